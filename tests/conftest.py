"""Shared fixtures of the project's own tests."""
from pathlib import Path

import pytest

from autograder.config import load_config

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="session")
def root() -> Path:
    return ROOT


@pytest.fixture(scope="session")
def course():
    return load_config(ROOT / "grading.yml")

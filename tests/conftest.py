"""Shared fixtures of the project's own tests."""
import os
import subprocess
import sys
from pathlib import Path

import pytest

from autograder.config import load_config

ROOT = Path(__file__).resolve().parent.parent
TORCH_CPU_INDEX = "https://download.pytorch.org/whl/cpu"


def pytest_configure(config):
    config.addinivalue_line(
        "markers", "slow: minutes, not seconds (fresh environments, downloads); CI runs them")
    config.addinivalue_line(
        "markers", "slurm: needs a running Slurm cluster (ci-templates/slurm/local-cluster.sh up); skipped without one")


class FreshVenv:
    """A virtual environment made here, without deepgrade and without this one's packages,
    holding torch's CPU build only (installed as the README says: from PyTorch's CPU index)."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        subprocess.run([sys.executable, "-m", "venv", str(folder)], check=True, capture_output=True)
        self.python = folder / "bin" / "python"
        self.pip_install("torch==2.13.0", "--index-url", TORCH_CPU_INDEX)
        assert self.run([str(self.python), "-c", "import autograder"], folder, check=False).returncode != 0, (
            "the fresh environment can import deepgrade before anything was installed")

    def env(self, **extra: str) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV", "PYTHONHOME")}
        env.update(PATH=f"{self.folder / 'bin'}{os.pathsep}{os.environ.get('PATH', '')}", VIRTUAL_ENV=str(self.folder),
                   PYTHONDONTWRITEBYTECODE="1", PIP_NO_COMPILE="1", PIP_RETRIES="0", **extra)
        return env

    def run(self, cmd: list[str], cwd: Path, check: bool = True, **extra: str) -> subprocess.CompletedProcess:
        """Run cmd in this environment, in cwd (never the checkout: `python -m` would import the
        autograder package from the working folder)."""
        proc = subprocess.run(cmd, cwd=cwd, env=self.env(**extra), capture_output=True, text=True, timeout=1200)
        if check:
            assert proc.returncode == 0, f"{' '.join(cmd)} failed:\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}"
        return proc

    def pip_install(self, *args: str, cwd: Path | None = None) -> subprocess.CompletedProcess:
        return self.run([str(self.python), "-m", "pip", "install", "--quiet", *args], cwd or self.folder)

    def imports_deepgrade_from(self, cwd: Path) -> Path:
        """Where this environment imports the autograder package from."""
        proc = self.run([str(self.python), "-c", "import autograder; print(autograder.__file__)"], cwd)
        return Path(proc.stdout.strip())


@pytest.fixture
def fresh_venv(tmp_path) -> FreshVenv:
    return FreshVenv(tmp_path / "fresh-venv")


@pytest.fixture(scope="session")
def root() -> Path:
    return ROOT


@pytest.fixture(scope="session")
def course():
    return load_config(ROOT / "grading.yml")

"""The grading engine as a package that an export carries, so that the export grades anywhere:

- Gradescope's zip holds the engine's source with a pyproject.toml (`engine_files`), which its
  setup.sh installs on the grading image;
- the otter and nbgrader exports hold a wheel built here (`build_wheel`), which pip installs
  from the export's requirements.txt (`find_links`).

The package is made from the `autograder` package being run, so an export always carries the
engine that wrote it. The wheel's version has a digest of the engine's files as its local part
(0.1.0+g1a2b3c4d5e6f): no index can hold such a version, so a requirement of it is met by that
wheel only, and a changed engine gets a new version.
"""
from __future__ import annotations

import hashlib
import importlib.util
import os
import subprocess
import sys
import tempfile
from importlib import metadata
from pathlib import Path

from packaging.requirements import Requirement

from autograder.exports import ExportError

DISTRIBUTION = "deepgrade"
WHEEL_DIR = "wheels"  # the folder of an export that holds the engine's wheel
_SKIP_DIRS = {"__pycache__", ".ipynb_checkpoints", ".pytest_cache"}
# Every file of the wheel gets this time (2000-01-01): the same engine gives the same wheel.
_SOURCE_DATE_EPOCH = "946684800"

PYPROJECT = """\
# The grading engine as a package, written by deepgrade for an export.{note}
[build-system]
requires = ["setuptools>=64"]
build-backend = "setuptools.build_meta"

[project]
name = "{name}"
version = "{version}"
requires-python = ">=3.10"
dependencies = [
{dependencies}
]

[project.scripts]
deepgrade = "autograder.cli:main"

[project.entry-points.pytest11]
deepgrade = "autograder.plugin"

[tool.setuptools.packages.find]
include = ["autograder", "autograder.*"]
"""


def version() -> str:
    """The engine's version: the installed distribution's, else the package's own."""
    try:
        return metadata.version(DISTRIBUTION)
    except metadata.PackageNotFoundError:
        from autograder import __version__

        return __version__


def requirements() -> list[Requirement]:
    """The engine's own dependencies (not its extras), as its installed metadata states them.
    Raises ExportError when deepgrade is not installed (its metadata is the list)."""
    try:
        specs = metadata.requires(DISTRIBUTION) or []
    except metadata.PackageNotFoundError:
        raise ExportError(
            "deepgrade is not installed in this environment, so its dependencies are unknown: "
            "install it (pip install -e .) and export again"
        ) from None
    reqs = [Requirement(spec) for spec in specs]
    return [r for r in reqs if r.marker is None or r.marker.evaluate({"extra": ""})]


def source_files(folder: Path, prefix: str) -> list[tuple[str, Path]]:
    """(path in the export, file) for every file under `folder`, caches left out, sorted."""
    out = []
    for dirpath, dirnames, filenames in os.walk(folder):
        dirnames[:] = sorted(d for d in dirnames if d not in _SKIP_DIRS)
        for f in sorted(filenames):
            if f.endswith((".pyc", ".pyo")):
                continue
            p = Path(dirpath) / f
            out.append((f"{prefix}/{p.relative_to(folder).as_posix()}", p))
    return out


def engine_files(dependencies: list[str], note: str = "", version_: str | None = None) -> dict[str, bytes]:
    """pyproject.toml (with these dependency lines, and version_ or the engine's version) and
    the autograder/ package being run: path -> content, the tree pip builds the engine from."""
    package = Path(__file__).resolve().parent.parent
    pyproject = PYPROJECT.format(
        name=DISTRIBUTION, version=version_ or version(), note=note,
        dependencies="\n".join(f'    "{d}",' for d in dependencies),
    )
    files = {"pyproject.toml": pyproject.encode("utf-8")}
    files.update((arc, p.read_bytes()) for arc, p in source_files(package, "autograder"))
    return files


def wheel_version(files: dict[str, bytes]) -> str:
    """The engine's version with a digest of its files (path -> content) as the local part."""
    digest = hashlib.sha256()
    for rel in sorted(files):
        digest.update(rel.encode() + b"\0" + files[rel] + b"\0")
    return f"{version()}+g{digest.hexdigest()[:12]}"


def build_wheel(dest: Path) -> Path:
    """Build the engine's wheel into the folder `dest` (replacing an earlier build of it there)
    and return its path. Its dependencies are the engine's own ranges (numpy>=1.24, ...), so
    that pip picks builds that fit the grading image's Python; its version is wheel_version.
    Raises ExportError when the wheel cannot be built."""
    # pip builds with setuptools from this environment: no index is needed, so an offline
    # machine can export.
    if importlib.util.find_spec("setuptools") is None:
        raise ExportError("building deepgrade's wheel needs setuptools in this environment: "
                          "pip install setuptools, then export again")
    deps = [str(r) for r in requirements()]
    full = wheel_version(engine_files(deps))
    dest.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="deepgrade-wheel-") as tmp:
        src, out = Path(tmp) / "src", Path(tmp) / "out"
        for rel, data in engine_files(deps, version_=full).items():
            (src / rel).parent.mkdir(parents=True, exist_ok=True)
            (src / rel).write_bytes(data)
        cmd = [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "--no-index",
               "--quiet", "--wheel-dir", str(out), str(src)]
        env = dict(os.environ, SOURCE_DATE_EPOCH=_SOURCE_DATE_EPOCH, PIP_NO_INPUT="1",
                   PYTHONDONTWRITEBYTECODE="1")
        proc = subprocess.run(cmd, cwd=tmp, env=env, capture_output=True, text=True,
                              stdin=subprocess.DEVNULL, timeout=600)
        built = sorted(out.glob("*.whl"))
        if proc.returncode != 0 or len(built) != 1:
            raise ExportError(f"pip could not build deepgrade's wheel (exit {proc.returncode}):\n"
                              f"{(proc.stdout + proc.stderr)[-2000:]}")
        for old in dest.glob(f"{DISTRIBUTION}-*.whl"):
            old.unlink()  # an earlier export's engine: the requirement names this one only
        target = dest / built[0].name
        os.replace(built[0], target)
    return target


def find_links(wheel: Path, *places: str) -> str:
    """requirements.txt lines that let pip find `wheel` in each of `places` (a folder, relative
    to the requirements file or to pip's working folder, or absolute), then require it by its
    exact version. pip skips a place that does not exist, with a warning."""
    lines = [f"--find-links {p}" for p in places]
    return "\n".join(lines + [f"{DISTRIBUTION}=={wheel.name.split('-')[1]}"]) + "\n"

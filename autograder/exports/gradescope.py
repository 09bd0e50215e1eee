"""`deepgrade gradescope hwN -o autograder.zip`: the Gradescope autograder for one assignment.

Gradescope unpacks the zip into /autograder/source, runs setup.sh once when it builds the image,
and runs run_autograder for each submission, which it puts in /autograder/submission; the score
is read from /autograder/results/results.json. The zip holds:

    setup.sh, run_autograder     the two scripts Gradescope looks for at the top
    pyproject.toml               the engine as a package, its dependencies pinned (below)
    autograder/                  the engine's source
    grading.yml                  the course defaults and this assignment's block only
    solutions/hwN/               reference, visible and hidden/ tests of this assignment

The pins: each dependency at the version installed here, so that Gradescope grades with what
was tested, unless that version cannot be installed on every Python of SUPPORTED_PYTHONS (the
python3 of Gradescope's Ubuntu 22.04 and 24.04 images is 3.10 and 3.12); then at the newest
release that can (OLDEST_PYTHON_PINS). tests/test_gradescope.py downloads every pin for each of
those Pythons.

Both scripts take their root from DEEPGRADE_AUTOGRADER_ROOT (default /autograder), and
run_autograder its Python from DEEPGRADE_PYTHON (default the virtual environment setup.sh
made), so that the zip can be tried in a simulated /autograder tree on any machine.
"""
from __future__ import annotations

import io
import zipfile
from importlib import metadata
from pathlib import Path

import yaml
from packaging.specifiers import SpecifierSet

from autograder.config import AssignmentConfig, CourseConfig
from autograder.exports.engine import engine_files, requirements, source_files
from autograder.formats import write_bytes_atomic

TORCH_CPU_INDEX = "https://download.pytorch.org/whl/cpu"
TORCH_DEFAULT = "2.13.0"  # when torch is not installed here
# A fixed timestamp for every member: the same course tree gives the same zip, byte for byte.
_EPOCH = (2000, 1, 1, 0, 0, 0)
# The Pythons setup.sh must install on, and the images that have them.
SUPPORTED_PYTHONS = ("3.10", "3.11", "3.12", "3.13")
BASE_IMAGES = "Gradescope's Ubuntu 22.04 (Python 3.10) or Ubuntu 24.04 (Python 3.12) base image, x86_64"
# The newest release that installs, with what it requires, on every supported Python, for the
# dependencies whose recent releases need Python >= 3.11 (numpy 2.3, matplotlib 3.11; mlxtend
# 0.24 requires numpy 2.3; hypothesis after 6.168.5, which hw6's hidden tests use, requires 3.11).
OLDEST_PYTHON_PINS = {"numpy": "2.2.6", "matplotlib": "3.10.9", "mlxtend": "0.23.4", "hypothesis": "6.168.5"}

SETUP_SH = """\
#!/usr/bin/env bash
# Gradescope runs this once, as root, when it builds the autograder image for {name}.
# Python and a virtual environment, the CPU build of torch (the CUDA one is gigabytes and
# Gradescope has no GPU), the pinned dependencies, then the grader itself.
# Base image: {images}. Every pin installs on Python {pythons}.
set -euxo pipefail
root="${{DEEPGRADE_AUTOGRADER_ROOT:-/autograder}}"
export DEBIAN_FRONTEND=noninteractive
if ! python3 -c "import ensurepip, venv" >/dev/null 2>&1; then
    apt-get update -q
    apt-get install -y -q python3 python3-venv python3-pip
fi
python3 -m venv "$root/venv"
"$root/venv/bin/pip" install --upgrade pip
"$root/venv/bin/pip" install torch=={torch} --index-url {index}
"$root/venv/bin/pip" install "$root/source"
"""

RUN_AUTOGRADER = """\
#!/usr/bin/env bash
# Gradescope runs this for each submission of {name}: grade /autograder/submission and write
# /autograder/results/results.json. The exit status says whether grading worked; a submission
# that scores 0 still exits 0.
set -uo pipefail
root="${{DEEPGRADE_AUTOGRADER_ROOT:-/autograder}}"
python="${{DEEPGRADE_PYTHON:-$root/venv/bin/python}}"
mkdir -p "$root/results"
cd "$root/source" || exit 2
exec "$python" -m autograder grade "$root/submission" -a {name} \\
    --config "$root/source/grading.yml" -o "$root/results/results.json"
"""

_PYPROJECT_NOTE = """
# The dependencies are pinned (see setup.sh for the Pythons they install on); torch=={torch}
# is met by the CPU build that setup.sh installs first (2.x.y+cpu matches ==2.x.y)."""


def _supports_oldest(name: str) -> bool:
    """Whether the installed release of `name` allows every supported Python."""
    requires = metadata.metadata(name).get("Requires-Python") or ""
    return all(SpecifierSet(requires).contains(v) for v in SUPPORTED_PYTHONS)


def pinned_requirements() -> tuple[list[str], str]:
    """(the engine's dependencies pinned for Gradescope, torch's version): the version
    installed here when it installs on every supported Python, else OLDEST_PYTHON_PINS; a
    dependency that is not installed keeps its range."""
    lines, torch = [], ""
    for req in requirements():
        try:
            version = metadata.version(req.name)
        except metadata.PackageNotFoundError:
            lines.append(str(req))
            continue
        version = version.split("+")[0]  # 2.13.0+cpu -> 2.13.0: the local tag names the build
        if not _supports_oldest(req.name):
            if req.name.lower() not in OLDEST_PYTHON_PINS:
                lines.append(str(req))  # pip picks a release that fits the image
                continue
            version = OLDEST_PYTHON_PINS[req.name.lower()]
        if req.name.lower() == "torch":
            torch = version
        extras = f"[{','.join(sorted(req.extras))}]" if req.extras else ""
        lines.append(f"{req.name}{extras}=={version}")
    return lines, torch


def _grading_yml(course: CourseConfig, assignment: AssignmentConfig) -> str:
    """grading.yml with this assignment's block only: the zip says nothing about the others."""
    data = yaml.safe_load(course.path.read_text(encoding="utf-8"))
    data["assignments"] = {assignment.name: data["assignments"][assignment.name]}
    header = f"# grading.yml of {assignment.name}, written by `deepgrade gradescope`\n"
    return header + yaml.safe_dump(data, sort_keys=False)


def _add(zf: zipfile.ZipFile, name: str, data: bytes, executable: bool = False) -> None:
    info = zipfile.ZipInfo(name, date_time=_EPOCH)
    info.compress_type = zipfile.ZIP_DEFLATED
    info.external_attr = (0o100755 if executable else 0o100644) << 16
    zf.writestr(info, data)


def build_autograder(course: CourseConfig, assignment: AssignmentConfig, output: Path) -> list[str]:
    """Write the Gradescope autograder zip of `assignment` to `output` (atomically).
    Returns the names of its members."""
    course.check_tree([assignment.name])
    pins, torch = pinned_requirements()
    torch = torch or TORCH_DEFAULT
    engine = engine_files(pins, note=_PYPROJECT_NOTE.format(torch=torch))
    setup = SETUP_SH.format(name=assignment.name, torch=torch, index=TORCH_CPU_INDEX, images=BASE_IMAGES,
                            pythons=f"{SUPPORTED_PYTHONS[0]} to {SUPPORTED_PYTHONS[-1]}")
    members: list[tuple[str, bytes, bool]] = [
        ("setup.sh", setup.encode(), True),
        ("run_autograder", RUN_AUTOGRADER.format(name=assignment.name).encode(), True),
        ("pyproject.toml", engine.pop("pyproject.toml"), False),
        ("grading.yml", _grading_yml(course, assignment).encode(), False),
    ]
    members += [(arc, data, False) for arc, data in engine.items()]
    members += [(arc, p.read_bytes(), False)
                for arc, p in source_files(assignment.solution_dir, f"solutions/{assignment.path}")]
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        for name, data, executable in members:
            _add(zf, name, data, executable)
    write_bytes_atomic(output, buf.getvalue())
    return [m[0] for m in members]

"""`deepgrade gradescope hwN -o autograder.zip`: the Gradescope autograder for one assignment.

Gradescope unpacks the zip into /autograder/source, runs setup.sh once when it builds the image,
and runs run_autograder for each submission, which it puts in /autograder/submission; the score
is read from /autograder/results/results.json. The zip holds:

    setup.sh, run_autograder     the two scripts Gradescope looks for at the top
    pyproject.toml               the engine as a package, its dependencies pinned to the versions
                                 installed here (so Gradescope grades with what was tested)
    autograder/                  the engine's source
    grading.yml                  the course defaults and this assignment's block only
    solutions/hwN/               reference, visible tests and hidden/ tests of this assignment

Both scripts take their root from DEEPGRADE_AUTOGRADER_ROOT (default /autograder), and
run_autograder its Python from DEEPGRADE_PYTHON (default the virtual environment setup.sh
made), so that the zip can be tried in a simulated /autograder tree on any machine.
"""
from __future__ import annotations

import io
import os
import sys
import zipfile
from importlib import metadata
from pathlib import Path

import yaml
from packaging.requirements import Requirement

from autograder.config import AssignmentConfig, CourseConfig
from autograder.formats import write_bytes_atomic

_SKIP_DIRS = {"__pycache__", ".ipynb_checkpoints", ".pytest_cache"}
TORCH_CPU_INDEX = "https://download.pytorch.org/whl/cpu"
# A fixed timestamp for every member: the same course tree gives the same zip, byte for byte.
_EPOCH = (2000, 1, 1, 0, 0, 0)

SETUP_SH = """\
#!/usr/bin/env bash
# Gradescope runs this once, as root, when it builds the autograder image for {name}.
# Python and a virtual environment, the CPU build of torch (the CUDA one is gigabytes and
# Gradescope has no GPU), the pinned dependencies, then the grader itself.
# The pins were taken on Python {python}: choose a base image whose python3 is at least as
# recent (Ubuntu 24.04 has 3.12), or pip finds no build of some of them.
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


PYPROJECT = """\
# The grading engine as a package, written by `deepgrade gradescope`: the dependencies are
# pinned to the versions the instructor graded with. torch=={torch} is met by the CPU build
# that setup.sh installs first (2.x.y+cpu matches ==2.x.y).
[build-system]
requires = ["setuptools>=64"]
build-backend = "setuptools.build_meta"

[project]
name = "deepgrade"
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


def pinned_requirements(distribution: str = "deepgrade") -> tuple[list[str], str]:
    """(requirements pinned to the installed versions, torch's version) for the
    distribution's own dependencies (not its extras). A dependency that is not installed keeps
    its range."""
    lines, torch = [], ""
    for spec in metadata.requires(distribution) or []:
        req = Requirement(spec)
        if req.marker is not None and not req.marker.evaluate({"extra": ""}):
            continue  # an extra (dev, instructor): not needed to grade
        try:
            version = metadata.version(req.name)
        except metadata.PackageNotFoundError:
            lines.append(str(req))
            continue
        version = version.split("+")[0]  # 2.13.0+cpu -> 2.13.0: the local tag names the build
        if req.name.lower() == "torch":
            torch = version
        extras = f"[{','.join(sorted(req.extras))}]" if req.extras else ""
        lines.append(f"{req.name}{extras}=={version}")
    return lines, torch


def _version() -> str:
    try:
        return metadata.version("deepgrade")
    except metadata.PackageNotFoundError:
        from autograder import __version__

        return __version__


def _grading_yml(course: CourseConfig, assignment: AssignmentConfig) -> str:
    """grading.yml with this assignment's block only: the zip says nothing about the others."""
    data = yaml.safe_load(course.path.read_text(encoding="utf-8"))
    data["assignments"] = {assignment.name: data["assignments"][assignment.name]}
    header = f"# grading.yml of {assignment.name}, written by `deepgrade gradescope`\n"
    return header + yaml.safe_dump(data, sort_keys=False)


def _tree(folder: Path, arc_prefix: str) -> list[tuple[str, Path]]:
    """(name in the zip, file) for every file under `folder`, caches left out, sorted."""
    out = []
    for dirpath, dirnames, filenames in os.walk(folder):
        dirnames[:] = sorted(d for d in dirnames if d not in _SKIP_DIRS)
        for f in sorted(filenames):
            if f.endswith((".pyc", ".pyo")):
                continue
            p = Path(dirpath) / f
            out.append((f"{arc_prefix}/{p.relative_to(folder).as_posix()}", p))
    return out


def _add(zf: zipfile.ZipFile, name: str, data: bytes, executable: bool = False) -> None:
    info = zipfile.ZipInfo(name, date_time=_EPOCH)
    info.compress_type = zipfile.ZIP_DEFLATED
    info.external_attr = (0o100755 if executable else 0o100644) << 16
    zf.writestr(info, data)


def build_autograder(course: CourseConfig, assignment: AssignmentConfig, output: Path) -> list[str]:
    """Write the Gradescope autograder zip of `assignment` to `output` (atomically).
    Returns the names of its members."""
    course.check_tree([assignment.name])
    engine = Path(__file__).resolve().parent.parent  # the autograder package being run
    requirements, torch = pinned_requirements()
    torch = torch or "2.13.0"
    pyproject = PYPROJECT.format(torch=torch, version=_version(),
                                 dependencies="\n".join(f'    "{r}",' for r in requirements))
    members: list[tuple[str, bytes, bool]] = [
        ("setup.sh", SETUP_SH.format(name=assignment.name, torch=torch, index=TORCH_CPU_INDEX,
                                     python=f"{sys.version_info[0]}.{sys.version_info[1]}").encode(), True),
        ("run_autograder", RUN_AUTOGRADER.format(name=assignment.name).encode(), True),
        ("pyproject.toml", pyproject.encode(), False),
        ("grading.yml", _grading_yml(course, assignment).encode(), False),
    ]
    members += [(arc, p.read_bytes(), False) for arc, p in _tree(engine, "autograder")]
    members += [(arc, p.read_bytes(), False)
                for arc, p in _tree(assignment.solution_dir, f"solutions/{assignment.path}")]
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        for name, data, executable in members:
            _add(zf, name, data, executable)
    write_bytes_atomic(output, buf.getvalue())
    return [m[0] for m in members]

"""`deepgrade publish DIR`: the repository students get, written from the released assignments.

This repository holds every answer (solutions/, hidden tests, bug catalogs), so students never
work in it. After `deepgrade release` has brought assignments/ in sync with solutions/, publish
writes a standalone student repository into DIR:

    README.md          for students: set-up in one command; run, check, submit; rules that cost points
    requirements.txt   the engine's wheel from engine/, pinned to its exact version
    engine/deepgrade-<version>+g<digest>-py3-none-any.whl
                       the engine: the pytest plugin, gradient checks, `deepgrade check` and `submit`.
                       It holds no answers (those live in solutions/), and the leak check reads it.
    grading.yml        only what students may see: files, parts, points, visible test patterns
    assignments/hwN/   each published assignment exactly as `deepgrade release` wrote it
    .gitignore
    .github/workflows/autograde.yml   with --ci: ci-templates/github/student-autograde.yml
    .deepgrade-publish.json           the files publish wrote, with their SHA-256

The wheel's version carries a digest of the engine's files, so `pip install -r requirements.txt`
after a pull installs a changed engine and leaves an unchanged one alone.

A rerun on the same DIR adds the selected assignments to those published before (it never takes
one away), rewrites the files unchanged since it wrote them, keeps every file changed since then
(student work in a clone, a hand edit) and says so, and removes files it wrote that the release
no longer has. Nothing reaches DIR when the new content leaks (verify.LeakCheck); DIR as a whole
is checked again at the end.

A course publishes into the repository students clone, and students pull from it each week:

    deepgrade publish ../dl-course-student --through hw2
    cd ../dl-course-student && git add -A && git commit -m "Release hw2" && git push
"""
from __future__ import annotations

import hashlib
import json
import os
import re
import tempfile
import textwrap
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from autograder.config import AssignmentConfig, Course, CourseConfig, _test_functions, natural_order
from autograder.formats import write_bytes_atomic
from autograder.quiz import ANSWERS_NAME, QUIZ_NAME
from autograder.release import ReleaseError, diff_release, make_stub, quiz_release
from autograder.verify import IGNORED_DIRS, IGNORED_FILES, LeakCheck, LeakReport, pattern_matches

MANIFEST = ".deepgrade-publish.json"
ENGINE_DIR = "engine"
WORKFLOW = ".github/workflows/autograde.yml"
WORKFLOW_TEMPLATE = "ci-templates/github/student-autograde.yml"
# torch first, from PyTorch's CPU index, as in this project's own set-up (README.md): from the
# public index alone pip takes the CUDA build, gigabytes that students do not need (their GPU
# parts are graded on the course's GPU runner). 2.13.0 is the version the course is tested with.
TORCH = "torch==2.13.0"
TORCH_CPU_INDEX = "https://download.pytorch.org/whl/cpu"
SETUP = (f"python3 -m venv .venv && . .venv/bin/activate && pip install {TORCH} --index-url {TORCH_CPU_INDEX} "
         "&& pip install -r requirements.txt")
# The `tests` of a part with no visible test: grading.yml needs one pattern, and this one
# matches no test and names none of the hidden ones.
HIDDEN_ONLY = "(hidden tests only)"
_RELEASE_SKIP = {"hidden", "__pycache__", ".ipynb_checkpoints", ".pytest_cache"}


class PublishError(Exception):
    """Publishing cannot be done as asked (a stale release, a folder publish did not write, an
    engine that cannot be built); the message names the problem."""


@dataclass
class PublishReport:
    """What a publish did. written: files new or updated; kept: files left as they were because
    they changed since they were published; removed: files of an earlier publish that the
    release no longer has. leaks: the leak check of the new content when it failed (then
    nothing was written: `written` is empty), else of the folder as written."""

    folder: Path
    assignments: list[str]
    wheel: str = ""
    wheel_built: bool = False
    written: list[str] = field(default_factory=list)
    unchanged: int = 0
    kept: list[str] = field(default_factory=list)
    removed: list[str] = field(default_factory=list)
    leaks: LeakReport = field(default_factory=LeakReport)
    blocked: bool = False  # the new content leaked: nothing was written


def select(course: CourseConfig, assignments: list[str] | None = None, through: str | None = None) -> list[str]:
    """The assignments to publish: the named ones, every one up to `through` in natural order,
    or (neither given) all of them. Raises ConfigError for an unknown name, PublishError when
    both are given."""
    if assignments and through:
        raise PublishError("give --assignments or --through, not both")
    order = natural_order(course.assignments)
    if through is not None:
        course.assignment(through)  # raises ConfigError naming the known ones
        return order[: order.index(through) + 1]
    if assignments:
        for name in assignments:
            course.assignment(name)
        return natural_order(set(assignments))
    return order


# --- the content -------------------------------------------------------------------------------

def _tree(folder: Path) -> list[str]:
    """Files under folder as `deepgrade release` sees them: caches, dot-files and hidden/ left out."""
    out = []
    for dirpath, dirnames, filenames in os.walk(folder):
        dirnames[:] = sorted(d for d in dirnames if d not in _RELEASE_SKIP and not d.startswith("."))
        for name in sorted(filenames):
            if not name.startswith(".") and not name.endswith((".pyc", ".pyo")):
                out.append((Path(dirpath) / name).relative_to(folder).as_posix())
    return out


def released_files(assignment: AssignmentConfig) -> dict[str, bytes]:
    """Path -> content of the release assignments/hwN, after checking it is what `deepgrade
    release` makes of solutions/hwN now. A notebook is taken as released: releasing one again
    takes nbgrader, seconds to import (`deepgrade release --check`, which CI runs, compares
    notebooks too), and the leak check proves it holds no answer and no output. Raises
    PublishError when the release is missing or out of date."""
    a = assignment
    if not a.release_dir.is_dir():
        raise PublishError(f"assignments/{a.path} does not exist: run `deepgrade release {a.name}` first")
    expected: dict[str, bytes] = {}
    quiz_files = quiz_release(a)  # the quiz's questions and checks, never its answers
    for rel in _tree(a.solution_dir):
        if quiz_files and rel in (QUIZ_NAME, ANSWERS_NAME):
            continue
        source = (a.solution_dir / rel).read_bytes()
        if rel.endswith(".py"):
            expected[rel] = make_stub(source.decode("utf-8"), f"solutions/{a.path}/{rel}").encode("utf-8")
        elif rel.endswith(".ipynb"):
            released = a.release_dir / rel
            expected[rel] = released.read_bytes() if released.is_file() else b""
        else:
            expected[rel] = source
    expected.update(quiz_files)
    drift = diff_release(a, expected)
    if drift:
        shown = "; ".join(drift[:4]) + (f"; and {len(drift) - 4} more" if len(drift) > 4 else "")
        raise PublishError(f"assignments/{a.path} is not the release of solutions/{a.path} ({shown}): "
                           f"run `deepgrade release {a.name}`, then publish")
    return expected


def _plain(value):
    """Model values as YAML shows them best: 10.0 -> 10, tuples -> lists."""
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return value


def student_config(course: CourseConfig, names: list[str]) -> str:
    """The published grading.yml: per assignment its files, parts, points and rules, and of each
    part only the test patterns that match a visible test (HIDDEN_ONLY when none does)."""
    d = course.defaults
    defaults = {"runner": d.runner, "timeouts": d.timeouts.model_dump(), "limits": d.limits.model_dump()}
    if d.forbidden_imports:
        defaults["forbidden_imports"] = d.forbidden_imports
    assignments = {}
    for name in names:
        a = course.assignment(name)
        raw = a.raw
        visible = [(p.name, t) for p in sorted(a.release_dir.glob("test_*.py")) for t in _test_functions(p)]
        block: dict = {"title": raw.title}
        if raw.path:
            block["path"] = raw.path
        block["files"] = raw.files
        for key in ("support_files", "runner", "forbidden_imports", "hidden_package_data"):
            if getattr(raw, key):
                block[key] = getattr(raw, key)
        for key in ("timeouts", "limits"):
            if getattr(raw, key) is not None:
                block[key] = getattr(raw, key).model_dump()
        parts = {}
        for part_name, part in raw.parts.items():
            entry: dict = {"title": part.title} if part.title else {}
            entry["points"] = part.points
            entry["tests"] = [p for p in part.tests if pattern_matches(p, visible)] or [HIDDEN_ONLY]
            if part.runner:
                entry["runner"] = part.runner
            parts[part_name] = entry
        block["parts"] = parts
        assignments[name] = block
    data: dict = {}
    if course.raw.course.get("title"):
        data["course"] = {"title": course.raw.course["title"]}
    data["defaults"] = defaults
    data["assignments"] = assignments
    data = _plain(data)
    Course.model_validate(data)  # the students' engine must be able to read it
    header = (
        "# Written by `deepgrade publish`: each assignment's graded files, parts and points, and\n"
        "# the patterns of its visible tests (`pytest -m PART` runs one part). The hidden tests\n"
        "# that also grade each part are not in this repository.\n"
    )
    return header + yaml.safe_dump(data, sort_keys=False, allow_unicode=True, width=100,
                                   default_flow_style=None)


def _points(a: AssignmentConfig) -> str:
    return f"{sum(p.points for p in a.parts.values()):g}"


def _grouped(values: dict[str, object]) -> list[tuple[object, list[str]]]:
    """(value, the assignments that share it), in the order values first appear."""
    groups: dict[object, list[str]] = {}
    for name, value in values.items():
        groups.setdefault(value, []).append(name)
    return list(groups.items())


def _rules(course: CourseConfig, names: list[str]) -> list[str]:
    """The README's rules that cost points, from grading.yml: graded files, hidden tests,
    inputs, time limits, imports, GPU parts."""
    assignments = [course.assignment(n) for n in names]
    limits = _grouped({a.name: (a.timeouts.call, a.timeouts.total) for a in assignments})
    limit_text = "; ".join(
        (f"{', '.join(group)}: " if len(limits) > 1 else "")
        + f"{call:g} s per call into your code, {total / 60:g} min per submission"
        for (call, total), group in limits
    )
    rules = [
        "- **Only the files in the table are graded**, from the zip `deepgrade submit` makes. Edits "
        "to tests, `grading.yml` or other files are not handed in: your code must pass with them as "
        "published.",
        "- **The hidden tests grade more** than the visible ones: more shapes, edge cases and "
        "gradients, compared with a reference solution. Passing the visible tests is necessary, not "
        "sufficient.",
        "- **Leave the arrays you are given unchanged**: compute into new arrays (`out = x * 2`, not "
        "`x *= 2`). Tests of their own grade this; elsewhere a write shows as a warning.",
        f"- **Time limits**: {limit_text} (`timeouts` in `grading.yml`). A call that runs longer fails.",
        "- A file that does not import (a syntax error, an exception at import) scores 0 for every "
        "test that needs it; the rest of your submission is still graded.",
    ]
    imports = [(i, g) for i, g in _grouped({a.name: tuple(a.forbidden_imports) for a in assignments}) if i]
    if imports:
        listed = "; ".join(f"{', '.join(i)} in {', '.join(g)}" for i, g in imports)
        rules.append(f"- **Imports not allowed**: {listed}. Grading refuses them, so a module that "
                     "imports one does not import at all.")
    gpu = [f"{a.name}: {', '.join(p for p in a.parts if a.part_runner(p) == 'gpu')}"
           for a in assignments if any(a.part_runner(p) == "gpu" for p in a.parts)]
    if gpu:
        rules.append(f"- **GPU parts** ({'; '.join(gpu)}) are graded on the course's GPU runner; on a "
                     "machine without CUDA their tests show as skipped, with the reason.")
    return [textwrap.fill(rule, width=96, subsequent_indent="  ", break_on_hyphens=False) for rule in rules]


def student_readme(course: CourseConfig, names: list[str]) -> str:
    """The README of the student repository (Markdown)."""
    title = course.raw.course.get("title") or "Your course"
    first = course.assignment(names[0])
    part = next(iter(first.parts))
    rows = [
        f"| [{a.name}](assignments/{a.path}/README.md) | {a.title} | {', '.join(f'`{f}`' for f in a.files)} "
        f"| {_points(a)} |"
        for a in (course.assignment(n) for n in names)
    ]
    commands = [
        (f"pytest assignments/{first.path}", f"every visible test of {first.name} (they fail until your code works)"),
        (f"pytest assignments/{first.path} -m {part}", "one part (the parts are in grading.yml)"),
        (f"pytest assignments/{first.path} --pdb", "stop in the debugger at the first failure"),
        (f"deepgrade check {first.name}", "the visible tests as a score table, part by part"),
        (f"deepgrade submit {first.name}", "the zip to hand in: your graded files and their hashes"),
    ]
    width = max(len(c) for c, _ in commands) + 2
    command_lines = "\n".join(f"{c:<{width}}# {why}" for c, why in commands)
    return f"""# {title}

Your repository for {title}: the assignments released so far, their visible tests,
and `deepgrade`, the tool that runs them and packs your submission. Write your code where the
handouts say, run the tests, and hand in the zip that `deepgrade submit` makes.

## Set up, once

Python 3.10 or newer, in a terminal at the top of this repository:

```bash
{SETUP}
```

That installs `torch` (its CPU build: GPU parts are graded on the course's GPU runner), then
numpy, pytest and `deepgrade` (the wheel in `{ENGINE_DIR}/`). In each new terminal, activate the
environment again: `. .venv/bin/activate` (on Windows: `.venv\\Scripts\\activate`).

## Assignments

| assignment | topic | your files | points |
|---|---|---|---|
{chr(10).join(rows)}

Each handout (`assignments/hwN/README.md`, and its notebook) says what to implement: replace
each `# YOUR CODE HERE` / `raise NotImplementedError`. The parts of each assignment and their
points are in `grading.yml`.

## Run, check, submit

```bash
{command_lines}
```

Tests reach your code through the `student` fixture, which imports your modules fresh for each
test, so `print` and `pytest --pdb` work as usual. A failing test says which output is wrong,
the shapes expected and got, and the worst error and where it is. `deepgrade submit` prints
where it wrote the zip: upload that file where your course collects submissions.

## Rules that cost points

{chr(10).join(_rules(course, names))}

## Getting the next assignment

New assignments arrive in the course's repository, the one yours was cloned or forked from.
Once, name it as a remote (your course gives the address):

```bash
git remote add course COURSE-REPOSITORY-URL
```

Then, for each new assignment, commit your work and pull:

```bash
git pull course main && pip install -r requirements.txt
```

Your work is kept: released files do not change afterwards, unless the course announces a fix
(git then shows it beside your code to merge). `pip install` updates `deepgrade` when the course
ships a new one, and does nothing otherwise.
"""


def gitignore() -> str:
    lines = ["# Written by `deepgrade publish`: never part of this repository."]
    lines += [f"{d}/" for d in IGNORED_DIRS] + list(IGNORED_FILES)
    return "\n".join(lines) + "\n"


def requirements(wheel: str) -> str:
    """requirements.txt: exactly the engine wheel in engine/ (pip reads --find-links relative to
    this file, so it installs from any folder). Its version names the engine's content, and
    PyPI cannot hold a version with a local part: only this wheel satisfies it."""
    version = wheel.split("-")[1]
    return (
        "# Written by `deepgrade publish`. Set up as README.md says (torch first, the CPU build);\n"
        "# after a pull, `pip install -r requirements.txt` installs the course's new deepgrade, if any.\n"
        f"--find-links {ENGINE_DIR}\n"
        f"deepgrade=={version}\n"
    )


def workflow(course: CourseConfig, names: list[str]) -> str:
    """The student autograde workflow from ci-templates/, grading the newest published
    assignment. Looks in the course's ci-templates/, then in the engine's checkout."""
    for base in (course.root, Path(__file__).resolve().parent.parent):
        template = base / WORKFLOW_TEMPLATE
        if template.is_file():
            break
    else:
        raise PublishError(f"--ci: no {WORKFLOW_TEMPLATE} in {course.root} or beside the engine")
    text = template.read_text(encoding="utf-8")
    text, found = re.subn(r"(?m)^(\s*ASSIGNMENT:[ \t]*)\S+", lambda m: m.group(1) + names[-1], text, count=1)
    if not found:
        raise PublishError(f"--ci: {template} has no 'ASSIGNMENT:' line to set")
    return text


# --- the engine's wheel ------------------------------------------------------------------------

def engine_version() -> str:
    """The engine's version with a digest of its files as the local part ('0.1.0+g1a2b3c4d5e6f'),
    as exports.engine builds its wheel."""
    from autograder.exports import ExportError
    from autograder.exports.engine import engine_files, requirements as engine_requirements, wheel_version

    try:
        return wheel_version(engine_files([str(r) for r in engine_requirements()]))
    except ExportError as exc:
        raise PublishError(str(exc)) from None


def _sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


_BUILT: dict[str, tuple[str, bytes]] = {}  # version -> (name, bytes): one build per engine and process


def _engine_wheel(folder: Path, recorded: dict[str, str]) -> tuple[str, bytes, bool]:
    """(file name, content, built now?) of the engine's wheel: the one already in folder when
    publish wrote it there and the engine has not changed since, else a new build."""
    version = engine_version()
    for old in sorted((folder / ENGINE_DIR).glob(f"deepgrade-{version}-*.whl")):
        data = old.read_bytes()
        if recorded.get(f"{ENGINE_DIR}/{old.name}") == _sha(data):
            return old.name, data, False
    if version in _BUILT:
        return (*_BUILT[version], False)
    from autograder.exports import ExportError
    from autograder.exports.engine import build_wheel

    with tempfile.TemporaryDirectory(prefix="deepgrade-publish-") as tmp:
        try:
            wheel = build_wheel(Path(tmp))
        except ExportError as exc:
            raise PublishError(str(exc)) from None
        _BUILT[version] = (wheel.name, wheel.read_bytes())
    return (*_BUILT[version], True)


# --- writing -----------------------------------------------------------------------------------

def read_manifest(folder: Path) -> dict | None:
    """The manifest of an earlier publish into folder, or None. Raises PublishError when it
    exists but cannot be read."""
    path = Path(folder) / MANIFEST
    if not path.is_file():
        return None
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        if not isinstance(data.get("files"), dict) or not isinstance(data.get("assignments"), list):
            raise ValueError("expected 'assignments' and 'files'")
    except (ValueError, UnicodeDecodeError, AttributeError) as exc:
        raise PublishError(f"{path}: not a manifest written by `deepgrade publish` ({exc}); restore it "
                           "from git, or publish into a new folder") from None
    return data


def content(course: CourseConfig, names: list[str], ci: bool = False) -> dict[str, bytes]:
    """Path -> content of everything publish writes but the engine (see add_engine)."""
    files: dict[str, bytes] = {}
    for name in names:
        a = course.assignment(name)
        files.update((f"assignments/{a.path}/{rel}", data) for rel, data in released_files(a).items())
    files["grading.yml"] = student_config(course, names).encode()
    files["README.md"] = student_readme(course, names).encode()
    files[".gitignore"] = gitignore().encode()
    if ci:
        files[WORKFLOW] = workflow(course, names).encode()
    return files


def add_engine(files: dict[str, bytes], folder: Path, recorded: dict[str, str] | None = None) -> tuple[str, bool]:
    """Add the engine's wheel and the requirements.txt that installs it to files (reusing the
    wheel publish wrote into folder before, when the engine is the same). Returns (the wheel's
    file name, whether it was built now)."""
    wheel, data, built = _engine_wheel(Path(folder), recorded or {})
    files[f"{ENGINE_DIR}/{wheel}"] = data
    files["requirements.txt"] = requirements(wheel).encode()
    return wheel, built


def publish(course: CourseConfig, folder: Path, names: list[str], ci: bool = False) -> PublishReport:
    """Write (or update) the student repository in folder with the assignments `names` and
    those published there before; then check it for leaks. Returns PublishReport.

    Raises PublishError, before anything is written, for a stale release, or a folder that
    publish did not write and whose files it would overwrite."""
    folder = Path(folder)
    if folder.exists() and not folder.is_dir():
        raise PublishError(f"{folder} is a file: expected a folder for the student repository")
    manifest = read_manifest(folder)
    recorded: dict[str, str] = dict(manifest["files"]) if manifest else {}
    before = list(manifest["assignments"]) if manifest else []
    gone = [n for n in before if n not in course.assignments]
    if gone:
        raise PublishError(f"{folder} holds {', '.join(gone)}, which grading.yml no longer lists: publish "
                           "never takes an assignment away; remove it there by hand (git rm) and from "
                           f"{MANIFEST}")
    names = natural_order(set(names) | set(before))
    ci = ci or bool(manifest and manifest.get("ci"))
    try:
        course.check_tree(names)
        files = content(course, names, ci)
    except ReleaseError as exc:
        raise PublishError(str(exc)) from None
    if manifest is None:
        clash = [rel for rel, data in files.items() if (folder / rel).exists()
                 and (not (folder / rel).is_file() or (folder / rel).read_bytes() != data)]
        clash += [f"{ENGINE_DIR}/"] if (folder / ENGINE_DIR).exists() else []
        clash += ["requirements.txt"] if (folder / "requirements.txt").exists() else []
        if clash:
            shown = ", ".join(clash[:5]) + (f" and {len(clash) - 5} more" if len(clash) > 5 else "")
            raise PublishError(f"{folder} was not written by `deepgrade publish` (it has no {MANIFEST}) and "
                               f"already holds {shown}: publish into a new or empty folder, or a clone of "
                               "the published repository")
    wheel, built = add_engine(files, folder, recorded)
    report = PublishReport(folder, names, wheel=wheel, wheel_built=built)

    # The new content is checked before any of it reaches the folder.
    check = LeakCheck(course)
    with tempfile.TemporaryDirectory(prefix="deepgrade-publish-") as tmp:
        for rel, data in files.items():
            (Path(tmp) / rel).parent.mkdir(parents=True, exist_ok=True)
            (Path(tmp) / rel).write_bytes(data)
        staged = check.scan(Path(tmp))
    if staged.problems:
        report.leaks, report.blocked = staged, True
        return report

    for rel, data in files.items():
        target = folder / rel
        if target.is_file() and target.read_bytes() == data:
            report.unchanged += 1
        elif target.exists() and (not target.is_file() or recorded.get(rel) != _sha(target.read_bytes())):
            report.kept.append(rel)  # changed since it was published: someone's work
        else:
            write_bytes_atomic(target, data)
            report.written.append(rel)
    for rel in sorted(set(recorded) - set(files)):
        target = folder / rel
        if target.is_file() and recorded[rel] == _sha(target.read_bytes()):
            target.unlink()
            report.removed.append(rel)
            for parent in target.parents:
                if parent == folder or any(parent.iterdir()):
                    break
                parent.rmdir()
        elif target.exists():
            report.kept.append(rel)
    manifest = {
        "written_by": "deepgrade publish: the files it manages here, and their SHA-256 as published",
        "assignments": names,
        "ci": ci,
        "files": {rel: _sha(data) for rel, data in sorted(files.items())},
    }
    write_bytes_atomic(folder / MANIFEST, (json.dumps(manifest, indent=1) + "\n").encode())
    report.leaks = check.scan(folder)
    return report

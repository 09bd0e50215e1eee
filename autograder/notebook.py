"""Handout notebooks: the in-notebook `check("part")` helper, and graded runs for the exports.

A source notebook (solutions/hwN/hwN.ipynb) is released by autograder.release
(`release_notebook`, with nbgrader's own preprocessors); NotebookError and release_notebook are
importable from here too. This module imports release, never the other way round.

Checks: `check("affine")` in a student notebook prints a pass/fail line per visible test of
that part (the test_*.py files beside the notebook). The visible tests run in a fresh child
pytest, so edits to the modules are always seen; one run serves every part until a .py file of
the folder changes. The parts and their test patterns come from grading.yml (found in the
notebook's folder or above) or, in an exported course, from `deepgrade_parts.json` beside the
notebook.

Graded runs (`graded_part`, `otter_case`) add the hidden tests, for the nbgrader and otter
exports (autograder/exports/); like those platforms, they run student code without a sandbox.
"""
from __future__ import annotations

import fnmatch
import hashlib
import json
import os
import subprocess
import sys
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

from autograder.release import NotebookError, release_notebook  # noqa: F401 (re-exported)

PARTS_FILE = "deepgrade_parts.json"


def cell_sources(data: bytes, kinds: tuple[str, ...] = ("code", "markdown")) -> list[str]:
    """The source of each cell of the given kinds of a notebook ([] if it cannot be read)."""
    try:
        nb = json.loads(data.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError):
        return []
    sources = []
    for cell in nb.get("cells", []) if isinstance(nb, dict) else []:
        if cell.get("cell_type") in kinds:
            src = cell.get("source", "")
            sources.append("".join(src) if isinstance(src, list) else src)
    return sources


# --- checks -----------------------------------------------------------------------------------

@dataclass
class TestLine:
    """One test function's verdict (all its parametrized cases together)."""

    name: str
    cases: int
    passed: int
    message: str = ""
    skipped: int = 0

    @property
    def ok(self) -> bool:
        return self.cases > 0 and self.passed == self.cases


@dataclass
class PartResult:
    """What `run_part` found: per test function, how many of its cases passed."""

    part: str
    title: str
    tests: list[TestLine] = field(default_factory=list)

    @property
    def cases(self) -> int:
        return sum(t.cases for t in self.tests)

    @property
    def passed(self) -> int:
        return sum(t.passed for t in self.tests)

    @property
    def fraction(self) -> float:
        """Share of the part's test cases that passed, in [0, 1] (0 when none ran)."""
        return self.passed / self.cases if self.cases else 0.0


def _parts_of(folder: Path) -> tuple[str, dict[str, tuple[str, list[str]]]]:
    """(assignment name, part -> (title, test patterns)) for the notebook's folder."""
    from autograder.config import ConfigError, find_config, load_config

    cfg_path = find_config(folder)
    if cfg_path is not None:
        try:
            course = load_config(cfg_path, check_tree=False)
        except ConfigError:
            course = None
        if course is not None:
            a = course.assignment_for_path(folder) or course.assignments.get(folder.name)
            if a is not None:
                return a.name, {n: (p.title or n, list(p.tests)) for n, p in a.parts.items()}
    parts_file = folder / PARTS_FILE
    if parts_file.is_file():
        data = json.loads(parts_file.read_text(encoding="utf-8"))
        return data["assignment"], {
            n: (p.get("title", n), list(p["tests"])) for n, p in data["parts"].items()
        }
    raise NotebookError(
        f"no grading.yml above {folder} names this assignment, and there is no {PARTS_FILE} "
        "here: run the notebook from its assignment folder"
    )


def _matching_tests(folder: Path, patterns: list[str]) -> list[str]:
    """Node ids 'test_x.py::test_name' of the visible tests in folder that match patterns."""
    from autograder.config import _test_functions

    ids = []
    for path in sorted(folder.glob("test_*.py")):
        for name in _test_functions(path):
            for pattern in patterns:
                key = f"{path.name}::{name}" if "::" in pattern else name
                if fnmatch.fnmatchcase(key, pattern):
                    ids.append(f"{path.name}::{name}")
                    break
    return ids


def _base_name(nodeid: str) -> str:
    """'test_x.py::test_f[3-4]' -> 'test_x.py::test_f'."""
    return nodeid.split("[", 1)[0].rsplit("/", 1)[-1]


_RUNS: dict[tuple[str, str], tuple[list[dict], dict[str, dict]]] = {}


def _code_digest(folder: Path) -> str:
    """A hash of the folder's Python files and quiz answers: a cached run is reused only while
    none changed."""
    h = hashlib.sha256()
    for path in sorted([*folder.glob("*.py"), *folder.glob("answers.yml")]):
        h.update(path.name.encode() + b"\0" + path.read_bytes() + b"\0")
    return h.hexdigest()


def _run_visible(folder: Path, ids: list[str], timeout: float) -> tuple[list[dict], dict[str, dict]]:
    """(collected items, node id -> result) of one child pytest over the given test ids."""
    from autograder.runner import read_outcomes

    with tempfile.TemporaryDirectory(prefix="deepgrade-check-") as tmp:
        report = Path(tmp) / "outcomes.jsonl"
        ini = Path(tmp) / "pytest.ini"
        ini.write_text("[pytest]\n", encoding="utf-8")
        cmd = [
            sys.executable, "-m", "pytest", *ids, "-c", str(ini), "--rootdir", str(folder),
            "-p", "no:cacheprovider", "--import-mode=importlib", "-q", "--no-header",
            "--tb=no", "-W", "ignore::DeprecationWarning", "--deepgrade-report", str(report),
        ]
        env = dict(os.environ, PYTHONDONTWRITEBYTECODE="1")
        try:
            subprocess.run(cmd, cwd=folder, env=env, stdout=subprocess.DEVNULL,
                           stderr=subprocess.DEVNULL, stdin=subprocess.DEVNULL, timeout=timeout)
        except subprocess.TimeoutExpired:
            pass  # the tests that did not report count as not passed
        items, _, results = read_outcomes(report)
    return items, results


def run_part(part: str, folder: str | os.PathLike | None = None, timeout: float = 600) -> PartResult:
    """Run the visible tests of one part against the modules in folder (default: cwd).

    Returns PartResult. All visible tests of the assignment run at once in a child pytest with
    deepgrade's plugin (so the modules are imported fresh), and the outcomes are kept until a
    .py file of the folder changes: the next part's check then costs nothing. Raises
    NotebookError for an unknown part.
    """
    folder = Path(folder or os.getcwd()).resolve()
    name, parts = _parts_of(folder)
    if part not in parts:
        raise NotebookError(f"{name} has no part {part!r}; its parts are: {', '.join(parts)}")
    title, patterns = parts[part]
    ids = _matching_tests(folder, patterns)
    result = PartResult(part, title)
    if not ids:
        return result
    key = (str(folder), _code_digest(folder))
    if key not in _RUNS:
        every = _matching_tests(folder, [p for _, pats in parts.values() for p in pats])
        _RUNS.clear()
        _RUNS[key] = _run_visible(folder, every, timeout)
    items, results = _RUNS[key]
    wanted = set(ids)
    by_test: dict[str, TestLine] = {}
    for nodeid in [i["nodeid"] for i in items]:
        base = _base_name(nodeid)
        if base not in wanted:
            continue
        line = by_test.setdefault(base, TestLine(base, 0, 0))
        line.cases += 1
        res = results.get(nodeid)
        if res is not None and res["status"] == "passed" and res.get("when") == "call":
            line.passed += 1
        elif res is not None and res["status"] == "skipped":
            line.skipped += 1  # a GPU test on a machine without CUDA: not a failure here
            line.message = line.message or res.get("message", "") or "skipped"
        elif not line.message:
            msg = (res or {}).get("message", "") or "did not run"
            # The exception's own line comes first; pytest's "where ..." explanations follow.
            line.message = (msg.strip().splitlines() or ["failed"])[0]
    # A test that was not even collected (a syntax error in the module) counts as failed.
    result.tests = [by_test.get(i) or TestLine(i, 1, 0, "not collected") for i in ids]
    return result


def format_result(result: PartResult) -> str:
    """A short table: one line per test function, then the part's total."""
    width = max([len(t.name.split("::")[-1]) for t in result.tests] + [10])
    lines = [f"{result.part}: {result.title}"]
    for t in result.tests:
        verdict = "pass" if t.ok else "skip" if t.skipped == t.cases else "FAIL"
        count = f"{t.passed}/{t.cases}" if t.cases > 1 else ""
        note = ""
        if not t.ok:
            note = "not implemented yet" if "NotImplementedError" in t.message else t.message
            note = "  " + note[:160]
        lines.append(f"  {verdict}  {t.name.split('::')[-1]:<{width}} {count:>5}{note}".rstrip())
    if not result.tests:
        lines.append("  no visible tests for this part: only the hidden tests grade it")
    else:
        lines.append(f"  {result.passed}/{result.cases} visible test cases pass "
                     "(the hidden tests check more cases)")
    return "\n".join(lines)


def check(part: str, points: float | None = None, folder: str | os.PathLike | None = None):
    """Run one part's visible tests and print a pass/fail table.

    Returns None, or with `points` the share of them earned (points * fraction passed): an
    exported nbgrader notebook reads that number as the cell's partial credit.
    """
    result = run_part(part, folder)
    print(format_result(result))
    return None if points is None else round(points * result.fraction, 6)


def gradcheck(f, args, grads, dout=None, output=None, threshold: float = 1e-7, **kwargs) -> bool:
    """Print a gradient check's verdict, one line per input, instead of raising.

    Inputs as autograder.gradcheck.check_gradients. Returns True when every gradient is within
    threshold; on a mismatch prints what is wrong (the input, the worst relative error, where).
    """
    from autograder.gradcheck import GradientError, check_gradients

    try:
        worst = check_gradients(f, args, grads, dout=dout, output=output, threshold=threshold, **kwargs)
    except GradientError as exc:
        print(f"FAIL  {exc}")
        return False
    for name, err in worst.items():
        print(f"ok    d{name:<8} worst relative error {err:.1e} (threshold {threshold:.0e})")
    return True


# --- graded runs: the hidden tests too (nbgrader's autograde, otter's cases) ------------------

_GRADED: dict[tuple[str, str, str], list] = {}


def graded_outcomes(assignment: str, folder: str | os.PathLike | None = None) -> list:
    """Outcomes (autograder.runner.TestOutcome) of every visible and hidden test of an
    assignment, run on the modules in folder (default: cwd), with the grading.yml and
    solutions/ found in folder or above. Kept until a .py file of folder changes.

    This runs student code in an ordinary child process, as nbgrader and otter do; it is for
    those platforms' exports. `deepgrade grade` is the tamper-proof path.
    """
    from autograder.config import find_config, load_config
    from autograder.runner import run_tests

    folder = Path(folder or os.getcwd()).resolve()
    cfg = find_config(folder)
    if cfg is None:
        raise NotebookError(f"no grading.yml in {folder} or above: the hidden tests are not here")
    a = load_config(cfg, check_tree=False).assignment(assignment)
    key = (str(folder), assignment, _code_digest(folder))
    if key not in _GRADED:
        with tempfile.TemporaryDirectory(prefix="deepgrade-graded-") as tmp:
            run = run_tests(a, Path(tmp), submission=folder, isolation="inprocess")
        _GRADED[key] = run.outcomes
    return _GRADED[key]


def otter_case(assignment: str, test: str, folder: str | os.PathLike | None = None) -> bool:
    """True when one test ('test_x.py::test_f[params]', as the otter export names its cases)
    passed. A name without parameters ('test_x.py::test_f') means every case of that function
    (the cases of exports made before each parametrized case was a case of its own)."""
    outcomes = graded_outcomes(assignment, folder)
    mine = [o for o in outcomes if f"{o.file}::{o.name}" == test]
    if not mine and "[" not in test:
        mine = [o for o in outcomes if f"{o.file}::{o.name.split('[')[0]}" == test]
    return bool(mine) and all(o.status == "passed" for o in mine)


def graded_part(part: str, points: float, folder: str | os.PathLike | None = None) -> float:
    """The points one part's tests, visible and hidden, earned: each passed test is worth its
    share of `points` as `deepgrade grade` counts it (autograder.scoring.shares). Prints one
    line; nbgrader's autograde reads the returned number as the cell's score."""
    from autograder.scoring import SCORE_DECIMALS, shares

    folder = Path(folder or os.getcwd()).resolve()
    name, _ = _parts_of(folder)
    mine = [o for o in graded_outcomes(name, folder) if o.part == part]
    earned = sum(s for o, s in zip(mine, shares(points, len(mine))) if o.status == "passed")
    passed = sum(o.status == "passed" for o in mine)
    print(f"{part}: {passed}/{len(mine)} visible and hidden test cases pass")
    return round(earned, SCORE_DECIMALS)

"""How many typical bugs do an assignment's tests catch? Catalogued bugs and automatic mutants.

The data path of `deepgrade audit hwN`:

1. **Record.** The assignment's tests (visible and hidden) run once against the reference, in
   this process. Every call a test makes into the `student` namespace (and into objects it
   returned) is recorded with its arguments, and a profiler notes which reference functions
   each test executed (its *coverage*).
2. **Make.** The bug catalog (solutions/hwN/hidden/bugs/catalog.yml: named find/replace edits
   of a reference module) and the automatic mutants (autograder.mutants) become mutated copies
   of the assignment's modules.
3. **Set aside the equivalent.** Each mutant replays the recorded calls of the tests that cover
   its function, twice: with the tests' own inputs, and with fresh random arrays of the same
   shapes. A mutant whose outputs match the reference's on both is equivalent: no test could
   tell it apart, and it is not counted.
4. **Grade.** Every other mutant is graded by the tests that cover it (pytest with the
   deepgrade plugin, the submission imported in process: these are our own files, not a
   student's), stopping at the first failure; a catalogued bug by every test. A mutant is
   *caught* when a test fails, and the report names that test.
5. **Blast radius and variants.** A catalogued bug names the part(s) it may cost points in;
   the points it loses per part (each test's share, as grading scores it) must fall in those
   parts only. The catalog's `variants` are correct but unusual implementations: each is graded
   by every test and must lose exactly the points its entry states (`loses`, per part; none
   when absent), so a correct function never loses a point to the tests' arbitrary choices.

Steps 3 and 4 run in a pool of forked processes that inherit the recording.
"""
from __future__ import annotations

import contextlib
import copy
import html
import io
import multiprocessing
import os
import random
import shutil
import signal
import sys
import tempfile
import time
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import yaml

from autograder.config import AssignmentConfig
from autograder.mutants import Mutant, enclosing_function, make_mutants
from autograder.runner import pytest_command, read_outcomes
from autograder.scoring import shares

CATALOG = Path("bugs") / "catalog.yml"  # under the assignment's hidden/ folder: never released
MAX_CALLS_PER_TARGET = 12  # recorded calls per test and function: a gradient check makes hundreds
REPLAY_SECONDS = 20.0
MAX_REPLAYED_TESTS = 6  # per mutant, for the equivalence check
TEST_SECONDS = 120.0
RTOL, ATOL = 1e-9, 1e-12
# Points lost are sums of shares rounded to 4 places (scoring.shares): a stated loss of 1/3 point
# is 0.3334 or 0.3333 depending on which test fails, both within this.
POINTS_TOL = 1e-3


class AuditError(Exception):
    """The audit cannot run: a catalog entry is malformed, or the reference fails its tests."""


# --- the catalog --------------------------------------------------------------------------------

def _replace_function(source: str, name: str, code: str, where: str) -> str:
    """source with the def of `name` (top level, or "Class.method") replaced by `code`,
    re-indented to the def's column. Raises AuditError when there is no such def."""
    import ast
    import textwrap

    body = ast.parse(source).body
    node = None
    for i, part in enumerate(name.split(".")):
        node = next((n for n in body if isinstance(n, (ast.FunctionDef, ast.ClassDef, ast.AsyncFunctionDef))
                     and n.name == part), None)
        if node is None:
            raise AuditError(f"{where}: no definition of '{name}' to replace")
        body = node.body
    lines = source.splitlines(keepends=True)
    start = min([node.lineno] + [d.lineno for d in node.decorator_list]) - 1
    new = textwrap.indent(textwrap.dedent(code).strip("\n") + "\n", " " * node.col_offset)
    return "".join(lines[:start]) + new + "".join(lines[node.end_lineno:])


@dataclass(frozen=True)
class Edit:
    """One change of a reference module: find/replace (find must occur exactly once), or a
    whole function (`function`, top level or "Class.method") replaced by `code`."""

    name: str
    description: str
    file: str
    find: str = ""
    replace: str = ""
    function: str = ""
    code: str = ""

    def apply(self, source: str) -> str:
        """The module text with this edit in it. Raises AuditError when it does not apply."""
        if self.function:
            return _replace_function(source, self.function, self.code, f"'{self.name}'")
        n = source.count(self.find)
        if n != 1:
            raise AuditError(f"'{self.name}': the text to find occurs {n} times in {self.file} (expected once)")
        return source.replace(self.find, self.replace)

    def line(self, source: str) -> int:
        """The line of the reference module where the edit starts."""
        if self.function:
            import ast

            body = ast.parse(source).body
            for part in self.function.split("."):
                node = next(n for n in body if getattr(n, "name", None) == part)
                body = node.body
            return node.lineno
        return source[: source.index(self.find)].count("\n") + 1


@dataclass(frozen=True)
class Bug(Edit):
    """A catalogued student bug, and the parts it may cost points in (blast radius)."""

    parts: tuple[str, ...] = ()


@dataclass(frozen=True)
class Variant(Edit):
    """A correct but unusual implementation, and the points it must lose per part (a stated
    rule it breaks, such as changing an input in place); none when `loses` is empty."""

    loses: tuple[tuple[str, float], ...] = ()


@dataclass
class Catalog:
    bugs: list[Bug]
    skip_functions: tuple[str, ...] = ()
    variants: list[Variant] = field(default_factory=list)


def catalog_path(assignment: AssignmentConfig) -> Path:
    return assignment.hidden_dir / CATALOG


def _edit_fields(path: Path, kind: str, i: int, entry: Any, assignment: AssignmentConfig) -> dict[str, str]:
    if not isinstance(entry, dict):
        raise AuditError(f"{path}: {kind} #{i + 1} is not a mapping")
    missing = {"name", "description", "file"} - set(entry)
    if "function" in entry or "code" in entry:
        missing |= {"function", "code"} - set(entry)
    else:
        missing |= {"find", "replace"} - set(entry)
    if missing:
        raise AuditError(f"{path}: {kind} #{i + 1} lacks {sorted(missing)}")
    if entry["file"] not in assignment.files:
        raise AuditError(f"{path}: {kind} '{entry['name']}' edits {entry['file']}, not a graded file {assignment.files}")
    return {k: str(entry[k]) for k in ("name", "description", "file", "find", "replace", "function", "code")
            if k in entry}


def _part_names(path: Path, name: str, parts: Any, assignment: AssignmentConfig) -> list[str]:
    if not isinstance(parts, (list, dict)) or not all(isinstance(p, str) for p in parts):
        raise AuditError(f"{path}: '{name}': parts must be a list of part names")
    unknown = [p for p in parts if p not in assignment.parts]
    if unknown:
        raise AuditError(f"{path}: '{name}' names parts that {assignment.name} does not have: {unknown}")
    return list(parts)


def load_catalog(assignment: AssignmentConfig) -> Catalog:
    """The assignment's bug catalog and correct variants (empty when it has none). Raises
    AuditError naming the entry when one is malformed."""
    path = catalog_path(assignment)
    if not path.is_file():
        return Catalog([])
    raw = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    names: set[str] = set()

    def unique(name: str) -> None:
        if name in names:
            raise AuditError(f"{path}: two entries are named '{name}'")
        names.add(name)

    bugs = []
    for i, entry in enumerate(raw.get("bugs") or []):
        fields = _edit_fields(path, "bug", i, entry, assignment)
        unique(fields["name"])
        parts = _part_names(path, fields["name"], entry.get("parts", []), assignment)
        bugs.append(Bug(**fields, parts=tuple(parts)))
    variants = []
    for i, entry in enumerate(raw.get("variants") or []):
        fields = _edit_fields(path, "variant", i, entry, assignment)
        unique(fields["name"])
        loses = entry.get("loses") or {}
        if not isinstance(loses, dict) or not all(isinstance(v, (int, float)) and v > 0 for v in loses.values()):
            raise AuditError(f"{path}: variant '{fields['name']}': loses must map part names to positive points")
        _part_names(path, fields["name"], list(loses), assignment)
        variants.append(Variant(**fields, loses=tuple((k, float(v)) for k, v in loses.items())))
    mut = raw.get("mutants") or {}
    return Catalog(bugs, tuple(mut.get("skip_functions") or ()), variants)


# --- step 1: record the tests' calls and coverage --------------------------------------------------

class _Handle:
    """Stands, in a recorded call, for an object that an earlier call returned."""

    __slots__ = ("key",)

    def __init__(self, key: tuple) -> None:
        self.key = key


class _Recorder:
    """Records, per test, the calls made through the `student` namespace."""

    def __init__(self, module_names: list[str]) -> None:
        self.module_names = set(module_names)
        self.scripts: dict[str, list[dict]] = {}
        self.coverage: dict[str, set[tuple[str, str]]] = defaultdict(set)
        self.current: list[dict] | None = None
        self._ids: dict[int, tuple] = {}
        self._keep: list[Any] = []  # holds returned objects so that their ids stay theirs
        self._counts: Counter = Counter()

    def start(self, nodeid: str) -> None:
        self.current = self.scripts.setdefault(nodeid, [])
        self._ids.clear()
        self._keep.clear()
        self._counts.clear()

    def stop(self) -> None:
        self.current = None
        self._ids.clear()
        self._keep.clear()

    def encode(self, value: Any, depth: int = 0) -> Any:
        key = self._ids.get(id(value))
        if key is not None:
            return _Handle(key)
        if depth < 3 and isinstance(value, (tuple, list)):
            return type(value)(self.encode(v, depth + 1) for v in value)
        if depth < 3 and isinstance(value, dict):
            return {k: self.encode(v, depth + 1) for k, v in value.items()}
        try:
            return copy.deepcopy(value)
        except Exception:  # noqa: BLE001 - an object that cannot be copied is kept as it is
            return value

    def register(self, result: Any, index: int) -> None:
        self._keep.append(result)
        self._ids[id(result)] = (index, None)
        if isinstance(result, (tuple, list)):
            for j, item in enumerate(result):
                if not isinstance(item, (int, float, bool, str, type(None))):
                    self._ids.setdefault(id(item), (index, j))

    def call(self, target: tuple, fn: Any, args: tuple, kwargs: dict) -> Any:
        args = tuple(_unwrap(a) for a in args)
        kwargs = {k: _unwrap(v) for k, v in kwargs.items()}
        op = None
        name = target[-1]
        if self.current is not None and self._counts[name] < MAX_CALLS_PER_TARGET:
            self._counts[name] += 1
            op = {"target": self.encode_target(target), "args": self.encode(args), "kwargs": self.encode(kwargs)}
        index = None
        if op is not None and self.current is not None:
            # Appended before the call: a call that raises (as a test may want) is replayed too.
            index = len(self.current)
            self.current.append(op)
        result = fn(*args, **kwargs)
        if index is not None:
            self.register(result, index)
        return self.wrap(result)

    def encode_target(self, target: tuple) -> tuple:
        if target[0] == "method":
            return ("method", self.encode(target[1]), target[2])
        return target

    def wrap(self, value: Any) -> Any:
        if type(value).__module__ in self.module_names and not isinstance(value, type):
            return _RecObject(self, value)
        return value


def _unwrap(value: Any) -> Any:
    if isinstance(value, _RecObject):
        return object.__getattribute__(value, "_obj")
    if isinstance(value, tuple) and any(isinstance(v, _RecObject) for v in value):
        return tuple(_unwrap(v) for v in value)
    if isinstance(value, list) and any(isinstance(v, _RecObject) for v in value):
        return [_unwrap(v) for v in value]
    return value


class _RecObject:
    """A student object seen by a test during recording: its method calls are recorded."""

    def __init__(self, recorder: _Recorder, obj: Any) -> None:
        object.__setattr__(self, "_rec", recorder)
        object.__setattr__(self, "_obj", obj)

    def __getattr__(self, name: str) -> Any:
        obj = object.__getattribute__(self, "_obj")
        rec = object.__getattribute__(self, "_rec")
        value = getattr(obj, name)
        if callable(value) and getattr(value, "__self__", None) is obj:
            return lambda *a, **k: rec.call(("method", obj, name), value, a, k)
        return value

    def __setattr__(self, name: str, value: Any) -> None:
        setattr(object.__getattribute__(self, "_obj"), name, _unwrap(value))

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        obj = object.__getattribute__(self, "_obj")
        rec = object.__getattribute__(self, "_rec")
        return rec.call(("method", obj, "__call__"), obj, args, kwargs)


class _RecNamespace:
    """The `student` namespace during recording."""

    def __init__(self, recorder: _Recorder, ns: Any) -> None:
        self._rec, self._ns = recorder, ns

    def __getattr__(self, name: str) -> Any:
        value = getattr(self._ns, name)
        if callable(value):
            return lambda *a, **k: self._rec.call(("ns", name), value, a, k)
        return value

    def __dir__(self) -> list[str]:
        return dir(self._ns)


class _RecordPlugin:
    """pytest hooks for the recording run: which test is running, and what it executes."""

    def __init__(self, recorder: _Recorder, files: dict[str, str]) -> None:
        self.recorder, self.files = recorder, files

    def _profile(self, cov: set):
        files = self.files

        def prof(frame, event, arg):
            if event == "call":
                name = files.get(frame.f_code.co_filename)
                if name is not None:
                    cov.add((name, frame.f_code.co_qualname))
        return prof

    def pytest_runtest_call(self, item):
        self.recorder.start(item.nodeid)
        sys.setprofile(self._profile(self.recorder.coverage[item.nodeid]))

    def pytest_runtest_teardown(self, item):
        sys.setprofile(None)
        self.recorder.stop()


@contextlib.contextmanager
def _quiet():
    """Silence pytest's terminal output (file-descriptor level, as pytest's capture is)."""
    sys.stdout.flush()
    sys.stderr.flush()
    saved = os.dup(1), os.dup(2)
    with open(os.devnull, "w") as null:
        os.dup2(null.fileno(), 1)
        os.dup2(null.fileno(), 2)
        try:
            with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
                yield
        finally:
            sys.stdout.flush()
            os.dup2(saved[0], 1)
            os.dup2(saved[1], 2)
            os.close(saved[0])
            os.close(saved[1])


def _pytest_args(assignment: AssignmentConfig, work: Path, submission: Path | None,
                 tests: list[str] | None = None, first_failure: bool = False) -> tuple[list[str], Path]:
    work.mkdir(parents=True, exist_ok=True)
    report = work / "outcomes.jsonl"
    report.unlink(missing_ok=True)
    ini = work / "pytest.ini"
    ini.write_text("[pytest]\n", encoding="utf-8")
    paths = [Path(t) for t in tests] if tests is not None else None
    cmd = pytest_command(assignment, report, submission, ini, tests=paths, isolation="inprocess")
    args = cmd[3:]  # drop `python -m pytest`
    if first_failure:
        args.append("-x")
    return args, report


@dataclass
class Recording:
    """What the reference run learned: per test, its calls, coverage and part."""

    scripts: dict[str, list[dict]]
    coverage: dict[str, set[tuple[str, str]]]
    parts: dict[str, str | None]
    order: list[str]
    failures: list[str]
    durations: dict[str, float] = field(default_factory=dict)


def record(assignment: AssignmentConfig, work: Path) -> Recording:
    """Run every test of the assignment against the reference, recording (see module doc)."""
    import pytest

    from autograder import plugin

    names = assignment.module_names + assignment.support_module_names
    # The tests see a copy of the reference as the submission: what the `reference` fixture
    # runs (from solutions/) then counts for no test's coverage.
    copy_dir = _mutated_copy(assignment, None, None, parent=work)
    files = {str((copy_dir / f"{n}.py").resolve()): f"{n}.py" for n in assignment.module_names}
    recorder = _Recorder(names)
    real_namespace = plugin.ModuleNamespace

    def namespace(loaded, label="submission", **options):
        ns = real_namespace(loaded, label=label, **options)
        return ns if label == "reference" else _RecNamespace(recorder, ns)

    args, report = _pytest_args(assignment, work, copy_dir)
    plugin.ModuleNamespace = namespace
    cwd = os.getcwd()
    try:
        os.chdir(work)
        with _quiet():
            pytest.main(args, plugins=[_RecordPlugin(recorder, files)])
    finally:
        os.chdir(cwd)
        plugin.ModuleNamespace = real_namespace
        sys.setprofile(None)
    items, _, results = read_outcomes(report)
    if not items:
        raise AuditError(f"the tests of {assignment.name} could not be collected")
    failures = [i["nodeid"] for i in items if results.get(i["nodeid"], {}).get("status") not in ("passed", "skipped")]
    return Recording(
        scripts=recorder.scripts, coverage=dict(recorder.coverage),
        parts={i["nodeid"]: i["part"] for i in items}, order=[i["nodeid"] for i in items],
        failures=failures,
        durations={n: float(r.get("duration", 0.0)) for n, r in results.items()},
    )


# --- step 3: replay, and compare with the reference ----------------------------------------------

class _Timeout(Exception):
    pass


@contextlib.contextmanager
def _time_limit(seconds: float):
    def alarm(signum, frame):
        raise _Timeout(f"took longer than {seconds:g} s")

    old = signal.signal(signal.SIGALRM, alarm)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, old)


def _summary(value: Any, depth: int = 0) -> Any:
    """What is compared of a returned value: arrays and scalars, one container level deep."""
    if hasattr(value, "detach") and hasattr(value, "cpu"):  # a torch tensor
        value = value.detach().cpu().numpy()
    if isinstance(value, np.ndarray) and value.dtype != object:
        return value.astype(np.float64) if value.dtype.kind in "biuf" else value
    if isinstance(value, (bool, int, float, np.number, str, type(None))):
        return value
    if depth == 0 and isinstance(value, (tuple, list)):
        return tuple(_summary(v, 1) for v in value)
    if depth == 0 and isinstance(value, dict):
        return {k: _summary(v, 1) for k, v in value.items()}
    return ("object", type(value).__name__)


def _same(a: Any, b: Any) -> bool:
    if isinstance(a, np.ndarray) or isinstance(b, np.ndarray):
        if not (isinstance(a, np.ndarray) and isinstance(b, np.ndarray)) or a.shape != b.shape:
            return False
        if a.dtype.kind == "f" or b.dtype.kind == "f":
            return bool(np.allclose(a, b, rtol=RTOL, atol=ATOL, equal_nan=True))
        return bool(np.array_equal(a, b))
    if isinstance(a, tuple) and isinstance(b, tuple):
        return len(a) == len(b) and all(_same(x, y) for x, y in zip(a, b))
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(_same(a[k], b[k]) for k in a)
    if isinstance(a, float) and isinstance(b, float):
        return bool(np.isclose(a, b, rtol=RTOL, atol=ATOL, equal_nan=True))
    try:
        return bool(a == b)
    except Exception:  # noqa: BLE001
        return False


def _resolve(value: Any, results: dict[int, Any]) -> Any:
    if isinstance(value, _Handle):
        index, item = value.key
        if index not in results:
            raise KeyError(value.key)
        out = results[index]
        return out if item is None else out[item]
    if isinstance(value, (tuple, list)):
        return type(value)(_resolve(v, results) for v in value)
    if isinstance(value, dict):
        return {k: _resolve(v, results) for k, v in value.items()}
    try:
        # A fresh copy for every replay: the reference's run must not advance the random
        # generator of a loader, or change an array, that the mutant's run then gets.
        return copy.deepcopy(value)
    except Exception:  # noqa: BLE001
        return value


def replay(script: list[dict], ns: Any) -> list[Any]:
    """Run a recorded script against a namespace; one observation per call (see _summary)."""
    np.random.seed(0)
    if "torch" in sys.modules:
        sys.modules["torch"].manual_seed(0)
    results: dict[int, Any] = {}
    seen: list[Any] = []
    for index, op in enumerate(script):
        try:
            args = _resolve(op["args"], results)
            kwargs = _resolve(op["kwargs"], results)
            target = op["target"]
            fn = getattr(ns, target[1]) if target[0] == "ns" else getattr(_resolve(target[1], results), target[2])
        except (KeyError, AttributeError, IndexError, TypeError):
            seen.append(("skipped",))  # it needed a result of a call that was not recorded
            continue
        try:
            out = fn(*args, **kwargs)
        except _Timeout:
            raise
        except Exception as exc:  # noqa: BLE001 - the reference may raise on purpose
            seen.append(("raised", type(exc).__name__))
            continue
        results[index] = out
        after = [_summary(a) for a in (*args, *kwargs.values()) if isinstance(a, dict)]
        seen.append(("returned", _summary(out), tuple(after)))
    return seen


def _perturbed(value: Any, rng: np.random.Generator) -> Any:
    """The same structure, with every float array replaced by fresh random values alike in size."""
    if isinstance(value, np.ndarray) and value.dtype.kind == "f" and value.size:
        scale = float(np.std(value)) or float(np.abs(value).max()) or 1.0
        return (float(np.mean(value)) + scale * rng.standard_normal(value.shape)).astype(value.dtype)
    if isinstance(value, (tuple, list)):
        return type(value)(_perturbed(v, rng) for v in value)
    if isinstance(value, dict):
        return {k: _perturbed(v, rng) for k, v in value.items()}
    return value


def perturb_script(script: list[dict], seed: int) -> list[dict]:
    rng = np.random.default_rng(seed)
    return [{**op, "args": _perturbed(op["args"], rng), "kwargs": _perturbed(op["kwargs"], rng)} for op in script]


# --- step 4: grade ---------------------------------------------------------------------------------

@dataclass
class Verdict:
    """What happened to one bug or mutant.

    status: caught | survived | equivalent | broken (the mutated copy could not be graded).
    caught_by: the failing tests' names (the first one only for mutants: grading stops there).
    """

    id: str
    kind: str  # "bug" or the mutation operator
    file: str
    function: str | None
    line: int | None
    description: str
    part: str | None
    status: str
    caught_by: list[str] = field(default_factory=list)
    diff: str = ""
    note: str = ""
    lost: dict[str, float] = field(default_factory=dict)  # part -> points lost (bugs, variants)
    allowed: list[str] = field(default_factory=list)  # a bug's parts; a variant's parts in `expected`
    expected: dict[str, float] = field(default_factory=dict)  # a variant's stated losses

    @property
    def confined(self) -> bool:
        """A bug's losses all fall in its own parts; a variant lost exactly what it states."""
        if self.kind == "variant":
            parts = set(self.lost) | set(self.expected)
            return all(abs(self.lost.get(p, 0.0) - self.expected.get(p, 0.0)) <= POINTS_TOL for p in parts)
        return all(p in self.allowed for p in self.lost)


@dataclass
class AuditReport:
    assignment: str
    bugs: list[Verdict]
    mutants: list[Verdict]
    mutants_made: int
    wall_time: float
    warnings: list[str] = field(default_factory=list)
    variants: list[Verdict] = field(default_factory=list)

    def catalog_caught(self) -> tuple[int, int]:
        return sum(v.status == "caught" for v in self.bugs), len(self.bugs)

    def bugs_confined(self) -> tuple[int, int]:
        """(catalogued bugs that lose points only in their own parts, all catalogued bugs)."""
        return sum(v.confined for v in self.bugs), len(self.bugs)

    def variants_exact(self) -> tuple[int, int]:
        """(variants that lose exactly their stated points, all variants)."""
        return sum(v.status == "exact" for v in self.variants), len(self.variants)

    @property
    def holds(self) -> bool:
        """Every bug caught and confined to its parts, every variant exact."""
        return (self.catalog_caught()[0] == len(self.bugs) and self.bugs_confined()[0] == len(self.bugs)
                and self.variants_exact()[0] == len(self.variants))

    def mutant_counts(self, part: str | None = "*") -> dict[str, int]:
        vs = [v for v in self.mutants if part == "*" or v.part == part]
        c = Counter(v.status for v in vs)
        return {"total": len(vs), "equivalent": c["equivalent"], "caught": c["caught"],
                "survived": c["survived"], "broken": c["broken"]}

    def mutation_score(self, part: str | None = "*") -> float | None:
        """Caught / (caught + survived): equivalent mutants are not counted."""
        c = self.mutant_counts(part)
        n = c["caught"] + c["survived"]
        return c["caught"] / n if n else None

    def parts(self) -> list[str | None]:
        seen: list[str | None] = []
        for v in self.bugs + self.mutants:
            if v.part not in seen:
                seen.append(v.part)
        return seen


_CTX: dict[str, Any] = {}


def _mutated_copy(assignment: AssignmentConfig, file: str | None, source: str | None,
                  parent: Path | None = None) -> Path:
    """A new folder holding the assignment's modules, `file` replaced by `source` (if given)."""
    folder = Path(tempfile.mkdtemp(prefix="deepgrade-audit-", dir=parent))
    for name in assignment.files + assignment.support_files:
        src = assignment.solution_dir / name
        if src.is_file():
            shutil.copy2(src, folder / name)
    if file is not None:
        (folder / file).write_text(source, encoding="utf-8")
    return folder


def _grade_copy(assignment: AssignmentConfig, folder: Path, tests: list[str] | None, first_failure: bool) -> list[dict]:
    """Failing outcomes of the tests on a mutated copy, in the order they ran."""
    import pytest

    work = folder / "_run"
    args, report = _pytest_args(assignment, work, folder, tests=tests, first_failure=first_failure)
    cwd = os.getcwd()
    try:
        os.chdir(work)
        with _quiet(), _time_limit(TEST_SECONDS):
            pytest.main(args)
    except _Timeout:
        pass  # the tests that had not finished count as failures below
    finally:
        os.chdir(cwd)
    items, started, results = read_outcomes(report)
    failed = []
    for item in items:
        res = results.get(item["nodeid"])
        if res is not None and res["status"] in ("failed", "error"):
            failed.append({"nodeid": item["nodeid"], "name": item["name"], "message": res["message"]})
        elif res is None and item["nodeid"] in started:
            failed.append({"nodeid": item["nodeid"], "name": item["name"], "message": "did not finish"})
    return failed


def _covering(rec: Recording, file: str, function: str | None) -> list[str]:
    """Node ids of the tests that executed `function` of `file` in the reference run."""
    if function is None:
        return []
    outer = function.split(".<locals>.")[0]
    return [n for n in rec.order if any(f == file and q.split(".<locals>.")[0] == outer for f, q in rec.coverage.get(n, ()))]


def _part_of(rec: Recording, nodeids: list[str]) -> str | None:
    """The part a function belongs to: that of the first test (in collection order) that runs
    it. Test files are written topic by topic, so this is the test written for it, not one of
    the later tests that run every function (the update interface, a whole network)."""
    for n in nodeids:
        if rec.parts.get(n):
            return rec.parts[n]
    return None


def _test_paths(assignment: AssignmentConfig, nodeids: list[str]) -> list[str]:
    out: list[str] = []
    for n in nodeids:
        base = str(assignment.root / n.split("[")[0])
        if base not in out:
            out.append(base)
    return out


def _is_equivalent(assignment: AssignmentConfig, folder: Path, nodeids: list[str]) -> bool:
    from autograder.loader import ModuleNamespace, load_modules

    rec: Recording = _CTX["recording"]
    names = assignment.module_names + assignment.support_module_names
    # The quickest tests' calls: a training test replayed four times would cost minutes.
    quick = sorted((n for n in nodeids if rec.scripts.get(n)), key=lambda n: rec.durations.get(n, 0.0))
    scripts = [(n, rec.scripts[n]) for n in quick[:MAX_REPLAYED_TESTS]]
    if not scripts:
        return False  # nothing to compare with: counted, never set aside
    try:
        with _time_limit(REPLAY_SECONDS):
            for n, script in scripts:
                for variant in (script, _CTX["perturbed"][n]):
                    ref = ModuleNamespace(load_modules(assignment.solution_dir, names), label="reference")
                    mut_loaded = load_modules(folder, names)
                    if mut_loaded.errors:
                        return False
                    mut = ModuleNamespace(mut_loaded, label="mutant")
                    with np.errstate(all="ignore"), _quiet():
                        if not all(_same(a, b) for a, b in zip(replay(variant, ref), replay(variant, mut))):
                            return False
    except _Timeout:
        return False
    return True


def _points_lost(rec: Recording, failed: list[dict]) -> dict[str, float]:
    """part -> points the failed tests cost, each test worth its part's points shared equally
    among the part's tests (as scoring does)."""
    worth = _CTX["worth"]
    lost: dict[str, float] = defaultdict(float)
    for f in failed:
        part = rec.parts.get(f["nodeid"])
        if part is not None:
            lost[part] += worth.get(f["nodeid"], 0.0)
    return {p: round(x, 6) for p, x in lost.items()}


def _judge(job: tuple) -> Verdict:
    """Grade one bug, variant or mutant (runs in a pool process)."""
    kind, index = job
    assignment: AssignmentConfig = _CTX["assignment"]
    rec: Recording = _CTX["recording"]
    if kind in ("bug", "variant"):
        edit: Edit = (_CTX["catalog"].bugs if kind == "bug" else _CTX["catalog"].variants)[index]
        original = (assignment.solution_dir / edit.file).read_text(encoding="utf-8")
        source = edit.apply(original)
        line = edit.line(original)
        function = edit.function.split(".")[0] if edit.function else enclosing_function(original, line)
        nodeids = _covering(rec, edit.file, function)
        v = Verdict(id=edit.name, kind=kind, file=edit.file, function=edit.function or function, line=line,
                    description=edit.description, part=_part_of(rec, nodeids), status="survived",
                    diff=Mutant(edit.name, edit.file, function or "", line, kind, "", source, original).diff)
        folder = _mutated_copy(assignment, edit.file, source)
        try:
            # Every test that runs the function is graded (not only the first to fail), so the
            # report can say which tests catch the bug and which parts it costs; other tests
            # cannot see it. A variant is graded by every test.
            tests = _test_paths(assignment, nodeids) if nodeids and kind == "bug" else None
            failed = _grade_copy(assignment, folder, tests, first_failure=False)
        finally:
            shutil.rmtree(folder, ignore_errors=True)
        v.lost = _points_lost(rec, failed)
        v.caught_by = [f["name"] for f in failed]
        if kind == "variant":
            v.expected = dict(edit.loses)
            v.status = "exact" if v.confined else "wrong"
            return v
        v.allowed = list(edit.parts) or ([v.part] if v.part else [])
        if failed:
            v.status = "caught"
            if v.part is None:
                v.part = rec.parts.get(failed[0]["nodeid"])
        return v
    m: Mutant = _CTX["mutants"][index]
    nodeids = _covering(rec, m.file, m.function)
    v = Verdict(id=m.id, kind=m.kind, file=m.file, function=m.function, line=m.line,
                description=m.description, part=_part_of(rec, nodeids), status="survived", diff=m.diff)
    folder = _mutated_copy(assignment, m.file, m.source)
    try:
        if not nodeids:
            v.note = "no test executes this function"
            return v
        if _is_equivalent(assignment, folder, nodeids):
            v.status = "equivalent"
            return v
        failed = _grade_copy(assignment, folder, _test_paths(assignment, nodeids), first_failure=True)
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    if failed:
        v.status, v.caught_by = "caught", [failed[0]["name"]]
    return v


def _audit_child(assignment: AssignmentConfig, catalog: Catalog, mutants: bool, jobs: int,
                 sample: int | None, seed: int, conn: Any) -> None:
    """The audit proper, in a child process; sends ("progress", done, total) messages, then
    ("done", AuditReport) or ("error", message)."""
    try:
        start = time.perf_counter()
        work = Path(tempfile.mkdtemp(prefix="deepgrade-audit-rec-"))
        try:
            rec = record(assignment, work)
        finally:
            shutil.rmtree(work, ignore_errors=True)
        warnings = []
        if rec.failures:
            # A test that fails on the reference would "catch" every mutant: no figure could
            # be trusted. `deepgrade verify` says why the reference fails.
            raise AuditError(f"{len(rec.failures)} test(s) of {assignment.name} fail on the reference, so "
                             f"nothing can be audited (run `deepgrade verify {assignment.name}`): "
                             + ", ".join(rec.failures[:5]) + (" ..." if len(rec.failures) > 5 else ""))
        made: list[Mutant] = []
        if mutants:
            for file in assignment.module_names:
                file = f"{file}.py"  # modules only: answers.yml is data, with no code to mutate
                src = (assignment.solution_dir / file).read_text(encoding="utf-8")
                made += make_mutants(src, file, catalog.skip_functions)
        chosen = made
        if sample is not None and sample < len(made):
            picks = sorted(random.Random(seed).sample(range(len(made)), sample))
            chosen = [made[i] for i in picks]
        # What each test is worth, as grading scores it: its part's points shared in collection order.
        worth: dict[str, float] = {}
        for part, spec in assignment.parts.items():
            ids = [n for n in rec.order if rec.parts.get(n) == part]
            worth.update(zip(ids, shares(spec.points, len(ids))))
        warnings += [f"bug '{b.name}' names no parts: it is held to the part of the tests written for its function"
                     for b in catalog.bugs if not b.parts]
        _CTX.update(assignment=assignment, recording=rec, catalog=catalog, mutants=chosen, worth=worth,
                    perturbed={n: perturb_script(s, i) for i, (n, s) in enumerate(sorted(rec.scripts.items()))})
        todo = ([("bug", i) for i in range(len(catalog.bugs))] + [("variant", i) for i in range(len(catalog.variants))]
                + [("mutant", i) for i in range(len(chosen))])
        verdicts: list[Verdict] = []
        if jobs > 1 and len(todo) > 1:
            # Forked workers inherit the recording; nothing of it is pickled.
            with multiprocessing.get_context("fork").Pool(jobs) as pool:
                for v in pool.imap(_judge, todo, chunksize=1):
                    verdicts.append(v)
                    conn.send(("progress", len(verdicts), len(todo)))
        else:
            for job in todo:
                verdicts.append(_judge(job))
                conn.send(("progress", len(verdicts), len(todo)))
        bugs = [v for v in verdicts if v.kind == "bug"]
        variants = [v for v in verdicts if v.kind == "variant"]
        muts = [v for v in verdicts if v.kind not in ("bug", "variant")]
        conn.send(("done", AuditReport(assignment.name, bugs, muts, len(made), time.perf_counter() - start,
                                       warnings, variants)))
    except Exception as exc:  # noqa: BLE001 - reported to the parent, which raises AuditError
        conn.send(("error", f"{type(exc).__name__}: {exc}"))
    finally:
        conn.close()


def run_audit(
    assignment: AssignmentConfig,
    mutants: bool = True,
    jobs: int = 2,
    sample: int | None = None,
    seed: int = 0,
    progress: Any = None,
) -> AuditReport:
    """Audit one assignment's tests: grade the catalog and (optionally) the automatic mutants.

    sample: grade only this many mutants, drawn with `seed` (None: all). jobs: processes that
    grade at once. progress: called with (done, total) after each verdict. Returns an
    AuditReport. Raises AuditError when the catalog is malformed or the audit fails.

    The work happens in a forked child, so the recording run's imports, the profiler and the
    mutated modules never touch the caller's process (a CLI, or a test session).
    """
    catalog = load_catalog(assignment)
    for edit in catalog.bugs + catalog.variants:  # malformed entries fail before anything runs
        edit.apply((assignment.solution_dir / edit.file).read_text(encoding="utf-8"))
    ctx = multiprocessing.get_context("fork")
    receive, send = ctx.Pipe(duplex=False)
    child = ctx.Process(target=_audit_child, args=(assignment, catalog, mutants, jobs, sample, seed, send))
    child.start()
    send.close()
    try:
        while True:
            try:
                msg = receive.recv()
            except EOFError:
                raise AuditError(f"the audit of {assignment.name} stopped without a result "
                                 f"(exit status {child.exitcode})") from None
            if msg[0] == "progress":
                if progress:
                    progress(msg[1], msg[2])
            elif msg[0] == "error":
                raise AuditError(f"the audit of {assignment.name} failed: {msg[1]}")
            else:
                return msg[1]
    finally:
        child.join(timeout=10)
        if child.is_alive():
            child.kill()


# --- reports ---------------------------------------------------------------------------------------

def _pct(x: float | None) -> str:
    return "-" if x is None else f"{100 * x:.1f}%"


def _points(lost: dict[str, float]) -> str:
    """{'conventions': 2.5} -> 'conventions 2.5'; nothing -> 'nothing'."""
    return ", ".join(f"{p} {x:.4g}" for p, x in sorted(lost.items()) if x > POINTS_TOL) or "nothing"


def summary_rows(report: AuditReport) -> list[list[str]]:
    """Rows of (part, catalog caught, mutants, equivalent, caught, survived, score), then a total."""
    rows = []
    for part in report.parts() + ["*"]:
        bugs = [v for v in report.bugs if part == "*" or v.part == part]
        c = report.mutant_counts(part)
        label = "all" if part == "*" else (part or "(no test)")
        rows.append([
            label, f"{sum(v.status == 'caught' for v in bugs)}/{len(bugs)}",
            str(c["total"]), str(c["equivalent"]), str(c["caught"]), str(c["survived"]),
            _pct(report.mutation_score(part)),
        ])
    return rows


HEADER = ["part", "bugs caught", "mutants", "equiv.", "caught", "survived", "score"]


def print_summary(report: AuditReport, console: Any = None) -> None:
    """A rich table of the audit, then the bugs and mutants that got through."""
    from rich.console import Console
    from rich.markup import escape
    from rich.table import Table

    console = console or Console()
    table = Table(title=f"{report.assignment}: test-suite audit ({report.wall_time:.0f} s)")
    for h in HEADER:
        table.add_column(h, justify="left" if h == "part" else "right", no_wrap=h == "part")
    rows = summary_rows(report)
    for i, row in enumerate(rows):
        table.add_row(*row, style="bold" if i == len(rows) - 1 else None)
    console.print(table)
    confined, n_bugs = report.bugs_confined()
    exact, n_var = report.variants_exact()
    console.print(f"blast radius: {confined}/{n_bugs} catalogued bugs lose points only in their own parts; "
                  f"variants: {exact}/{n_var} get exactly their stated points", highlight=False)
    for v in report.bugs:
        if v.status != "caught":
            console.print(f"[red]bug not caught[/red]: {escape(v.id)} ({v.file}, {v.function}): {escape(v.description)}")
        elif not v.confined:
            console.print(f"[red]bug costs points outside its parts[/red] {escape(str(v.allowed))}: {escape(v.id)} "
                          f"lost {escape(_points(v.lost))}")
    for v in report.variants:
        if v.status != "exact":
            console.print(f"[red]variant[/red] {escape(v.id)} lost {escape(_points(v.lost))}, must lose "
                          f"{escape(_points(v.expected))} (failed: {escape(', '.join(v.caught_by[:5]))})")
    for v in report.mutants:
        if v.status == "survived":
            console.print(f"[yellow]survived[/yellow] {escape(v.id)} in {v.function}: {escape(v.description)}"
                          + (f" ({escape(v.note)})" if v.note else ""))
    for w in report.warnings:
        console.print(f"[red]warning[/red]: {escape(w)}")


def markdown(report: AuditReport) -> str:
    """The full report: summary, every bug with the tests that caught it, every mutant."""
    out = [f"# Test-suite audit: {report.assignment}", ""]
    caught, total = report.catalog_caught()
    c = report.mutant_counts()
    out += [
        f"- catalogued bugs caught: **{caught}/{total}**",
        f"- automatic mutants: {report.mutants_made} made, {c['total']} graded, {c['equivalent']} equivalent "
        f"(set aside), {c['caught']} caught, {c['survived']} survived: mutation score "
        f"**{_pct(report.mutation_score())}**",
        f"- blast radius: **{report.bugs_confined()[0]}/{len(report.bugs)}** catalogued bugs lose points only "
        "in their own parts",
        f"- correct variants: **{report.variants_exact()[0]}/{len(report.variants)}** get exactly their "
        "stated points",
        f"- wall time: {report.wall_time:.1f} s", "",
        "| " + " | ".join(HEADER) + " |", "|" + "---|" * len(HEADER),
    ]
    out += ["| " + " | ".join(row) + " |" for row in summary_rows(report)]
    out += ["", "## Catalogued bugs", "", "| bug | its parts | what | points lost | caught by |", "|---|---|---|---|---|"]
    for v in report.bugs:
        by = ", ".join(f"`{n}`" for n in v.caught_by[:4]) + (f" and {len(v.caught_by) - 4} more" if len(v.caught_by) > 4 else "")
        lost = _points(v.lost) + ("" if v.confined else " **(outside its parts)**")
        out.append(f"| `{v.id}` | {', '.join(v.allowed) or '-'} | {v.description} | {lost} | {by or '**not caught**'} |")
    out += ["", "## Correct variants", "", "| variant | what | must lose | lost | verdict |", "|---|---|---|---|---|"]
    for v in report.variants:
        verdict = "exact" if v.status == "exact" else "**wrong**: " + ", ".join(f"`{n}`" for n in v.caught_by[:4])
        out.append(f"| `{v.id}` | {v.description} | {_points(v.expected)} | {_points(v.lost)} | {verdict} |")
    survivors = [v for v in report.mutants if v.status == "survived"]
    out += ["", f"## Surviving mutants ({len(survivors)})", ""]
    for v in survivors:
        out += [f"### `{v.id}` in `{v.function}` ({v.part or 'no part'})", "",
                f"{v.description}" + (f": {v.note}" if v.note else ""), "", "```diff", v.diff.rstrip(), "```", ""]
    out += ["## Caught mutants", "", "| mutant | function | change | caught by |", "|---|---|---|---|"]
    for v in report.mutants:
        if v.status == "caught":
            change = v.description.replace("|", r"\|")
            out.append(f"| `{v.id}` | `{v.function}` | {change} | `{v.caught_by[0]}` |")
    eq = [v for v in report.mutants if v.status == "equivalent"]
    out += ["", f"## Equivalent mutants, set aside ({len(eq)})", ""]
    out += [f"- `{v.id}` in `{v.function}`: {v.description}" for v in eq]
    if report.warnings:
        out += ["", "## Warnings", ""] + [f"- {w}" for w in report.warnings]
    return "\n".join(out) + "\n"


def write_report(report: AuditReport, path: Path) -> None:
    """Markdown, or (for a .html path) the same text in a minimal HTML page."""
    text = markdown(report)
    if path.suffix.lower() in (".html", ".htm"):
        text = (f"<!doctype html><meta charset='utf-8'><title>audit {html.escape(report.assignment)}</title>"
                f"<pre>{html.escape(text)}</pre>\n")
    path.write_text(text, encoding="utf-8")


__all__ = ["AuditError", "AuditReport", "Bug", "Catalog", "Variant", "Verdict", "load_catalog",
           "markdown", "print_summary", "record", "run_audit", "write_report"]

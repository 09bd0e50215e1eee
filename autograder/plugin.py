"""The pytest plugin: how every assignment test reaches student code, and how tests are marked.

Fixtures:
- ``student``: the student's modules as one namespace (``student.affine_forward``). Locally it
  is the assignment's modules beside the test file (or, for a test in hidden/, in the folder
  above), imported fresh for each test, so pdb and prints work as usual. In grading mode
  (``--deepgrade-submission``) it is the submission, reached through the grading backend.
- ``reference``: the reference solution from solutions/ (instructor side only).
- ``rng``: a numpy Generator seeded from the test's id, so inputs are the same on every run.

Markers: ``gpu`` (skipped, with the reason shown, when no CUDA device is present) and one marker
per part in grading.yml, added to each test its patterns match, so ``pytest assignments/hw1 -m
affine`` runs one part.

Grading mode writes one JSON line per test event to ``--deepgrade-report``; only the trusted
grader reads it.
"""
from __future__ import annotations

import json
import traceback
import zlib
from pathlib import Path

import numpy as np
import pytest

from autograder.config import CourseConfig, ConfigError, find_config, load_config
from autograder.loader import InputChangedWarning, LoadedModules, ModuleNamespace, load_modules

GPU_SKIP_REASON = "needs a CUDA GPU: this part is graded on a GPU runner (runner: gpu)"
CPU_ONLY_REASON = "graded on a CPU runner: this run (--runner gpu) grades the GPU parts only"
RUNNERS = ("cpu", "gpu", "all")


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("deepgrade")
    group.addoption("--deepgrade-submission", default=None, help="grade this folder of student files")
    group.addoption("--deepgrade-assignment", default=None, help="assignment name in grading.yml")
    group.addoption("--deepgrade-config", default=None, help="path of grading.yml")
    group.addoption("--deepgrade-report", default=None, help="write per-test outcomes (JSON lines)")
    group.addoption(
        "--deepgrade-runner", default="all", choices=list(RUNNERS),
        help="grading: the parts this runner grades; the others are deferred to their runner "
        "(all: every part, GPU parts deferred when there is no CUDA device)",
    )
    group.addoption(
        "--deepgrade-isolation", default="worker", choices=["worker", "inprocess"],
        help="grading: run student code in a sandboxed worker (default) or import it here",
    )


class _State:
    """What the plugin knows about the run: the course config and the grading options."""

    def __init__(self, config: pytest.Config) -> None:
        self.pytest_config = config
        self.submission = config.getoption("--deepgrade-submission")
        self.assignment_name = config.getoption("--deepgrade-assignment")
        self.isolation = config.getoption("--deepgrade-isolation")
        cfg_path = config.getoption("--deepgrade-config")
        if cfg_path is None:
            found = find_config(Path(config.rootpath))
            if found is None:
                found = find_config(Path.cwd())
            cfg_path = found
        self.course: CourseConfig | None = None
        if cfg_path is not None:
            try:
                # The tree check belongs to `deepgrade verify`; tests must run even mid-edit.
                self.course = load_config(cfg_path, check_tree=False)
            except ConfigError as exc:
                raise pytest.UsageError(str(exc)) from None
        if self.submission and (self.course is None or self.assignment_name is None):
            raise pytest.UsageError("--deepgrade-submission needs --deepgrade-assignment and grading.yml")
        report = config.getoption("--deepgrade-report")
        self.report = open(report, "a", encoding="utf-8") if report else None  # noqa: SIM115

    def assignment_for(self, path: Path):
        if self.course is None:
            return None
        if self.assignment_name:
            return self.course.assignment(self.assignment_name)
        return self.course.assignment_for_path(path)

    def emit(self, record: dict) -> None:
        if self.report is not None:
            self.report.write(json.dumps(record) + "\n")
            self.report.flush()


_STATE_KEY = pytest.StashKey[_State]()
_PART_KEY = pytest.StashKey[tuple]()
_GPU_KEY = pytest.StashKey[bool]()


def _state(config: pytest.Config) -> _State:
    return config.stash[_STATE_KEY]


def pytest_configure(config: pytest.Config) -> None:
    state = _State(config)
    config.stash[_STATE_KEY] = state
    _CONFIG["config"] = config  # pytest_warning_recorded is not given the config
    config.addinivalue_line("markers", f"gpu: {GPU_SKIP_REASON}")
    config.addinivalue_line("markers", "quiz: the concept-check questions of answers.yml (a part of each assignment)")
    if state.course is not None:
        for a in state.course.assignments.values():
            for part_name, part in a.parts.items():
                config.addinivalue_line(
                    "markers", f"{part_name}: part of {a.name} ({part.title or part_name}, {part.points:g} points)"
                )


def pytest_unconfigure(config: pytest.Config) -> None:
    if _CONFIG.get("config") is config:
        del _CONFIG["config"]
    state = config.stash.get(_STATE_KEY, None)
    if state is not None and state.report is not None:
        state.report.close()


def _student_dir(path: Path) -> Path:
    """The folder of the modules a test file exercises: its own, or the one above hidden/."""
    folder = path.parent
    return folder.parent if folder.name == "hidden" else folder


def _is_hidden(path: Path) -> bool:
    return path.parent.name == "hidden"


@pytest.hookimpl(tryfirst=True)
def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    # tryfirst: the part markers must be on the items before `-m` deselects by them.
    state = _state(config)
    for item in items:
        path = Path(str(item.path))
        assignment = state.assignment_for(path)
        gpu = item.get_closest_marker("gpu") is not None
        if assignment is not None:
            name = getattr(item, "originalname", item.name)
            part = assignment.part_of(path.name, name)
            if part is not None:
                item.add_marker(getattr(pytest.mark, part))
                item.stash[_PART_KEY] = (assignment.name, part)
                gpu = gpu or assignment.part_runner(part) == "gpu"
        item.stash[_GPU_KEY] = gpu
    # A course's tests (a student's `pytest assignments/hw2`): a failure shows the test's line,
    # the line of the student's code and the message (worst error, its index, the hint), not
    # the whole source of every function on the way, which pytest's default ("auto") prints.
    # The engine's own frames are hidden (__tracebackhide__). An explicit --tb still wins.
    if items and config.option.tbstyle == "auto" and all(
            state.assignment_for(Path(str(i.path))) is not None for i in items):
        config.option.tbstyle = "short"
    # A test is a GPU test when it is marked gpu or belongs to a part with runner: gpu. Each
    # runner skips what belongs to the other; the trusted grader scores those as deferred.
    runner = config.getoption("--deepgrade-runner")
    gpu_items = [i for i in items if i.stash[_GPU_KEY]]
    if runner == "gpu":
        for item in items:
            if not item.stash[_GPU_KEY]:
                item.add_marker(pytest.mark.skip(reason=CPU_ONLY_REASON))
    elif gpu_items and (runner == "cpu" or not _cuda_available()):
        for item in gpu_items:
            item.add_marker(pytest.mark.skip(reason=GPU_SKIP_REASON))


def _cuda_available() -> bool:
    try:
        import torch  # imported only when a gpu test is collected: it is slow to import
    except ImportError:
        return False
    return bool(torch.cuda.is_available())


def _module_names(state: _State, folder: Path) -> list[str]:
    assignment = state.assignment_for(folder)
    if assignment is not None:
        return assignment.module_names + assignment.support_module_names
    return sorted(
        p.stem for p in folder.glob("*.py") if not p.name.startswith(("test_", "conftest"))
    )


@pytest.fixture
def student(request: pytest.FixtureRequest):
    """The student's modules as one namespace: ``student.affine_forward(x, w, b)``."""
    state = _state(request.config)
    test_path = Path(str(request.node.path))
    if state.submission:
        folder = Path(state.submission)
        if state.isolation == "worker":
            from autograder import proxy  # the sandboxed worker: student code never runs here

            return proxy.student_for_test(request, state.assignment_for(folder), folder)
        return ModuleNamespace(load_modules(folder, _module_names(state, folder)), label="submission",
                               guard_inputs=True)
    folder = _student_dir(test_path)
    return ModuleNamespace(load_modules(folder, _module_names(state, folder)), label="assignment code",
                           guard_inputs=True)


@pytest.fixture
def quiz_answers(request: pytest.FixtureRequest) -> dict:
    """The student's answers.yml as {question id: answer}, read as data on this side (never
    by student code): the submission's in grading, else the one beside the test (or above
    hidden/). A missing or unreadable file fails the test, with the reason."""
    from autograder.quiz import ANSWERS_NAME, AnswersError, read_answers

    state = _state(request.config)
    folder = Path(state.submission) if state.submission else _student_dir(Path(str(request.node.path)))
    try:
        return read_answers(folder / ANSWERS_NAME)
    except AnswersError as exc:
        pytest.fail(str(exc), pytrace=False)


@pytest.fixture
def reference(request: pytest.FixtureRequest) -> ModuleNamespace:
    """The reference solution's modules, from solutions/ (never part of a student release)."""
    state = _state(request.config)
    test_path = Path(str(request.node.path))
    assignment = state.assignment_for(test_path)
    if assignment is None or not assignment.solution_dir.is_dir():
        pytest.fail("the reference solution is not available here (solutions/ is instructor-only)")
    names = assignment.module_names + assignment.support_module_names
    loaded: LoadedModules = load_modules(assignment.solution_dir, names)
    if loaded.errors:
        pytest.fail("the reference solution failed to import:\n" + "\n".join(loaded.errors.values()))
    return ModuleNamespace(loaded, label="reference")


@pytest.fixture
def rng(request: pytest.FixtureRequest) -> np.random.Generator:
    """A numpy Generator seeded from the test id: the same inputs on every run."""
    return np.random.default_rng(zlib.crc32(request.node.nodeid.encode()))


# --- grading mode: JSON lines for the trusted grader ------------------------------------------

def _describe(item: pytest.Item) -> dict:
    path = Path(str(item.path))
    return {
        "nodeid": item.nodeid,
        "name": item.name,
        "file": path.name,
        "hidden": _is_hidden(path),
        "part": item.stash.get(_PART_KEY, (None, None))[1],
        "gpu": item.stash.get(_GPU_KEY, item.get_closest_marker("gpu") is not None),
    }


def pytest_collection_finish(session: pytest.Session) -> None:
    state = _state(session.config)
    state.emit({"event": "collected", "items": [_describe(i) for i in session.items]})


def retarget(config: pytest.Config, submission: str, report: str, items: list[pytest.Item]) -> None:
    """Point a session that collected with no submission at one (a child forked from a warm,
    collected pytest, autograder/warm.py): grade `submission`, write outcomes to `report`,
    and record the collected items there, as pytest_collection_finish does."""
    config.option.deepgrade_submission = submission
    config.option.deepgrade_report = report
    state = _state(config)
    state.submission = submission
    if state.report is not None:
        state.report.close()
    state.report = open(report, "a", encoding="utf-8")  # noqa: SIM115 - closed at unconfigure
    state.emit({"event": "collected", "items": [_describe(i) for i in items]})


def _failure_message(call: pytest.CallInfo, state: _State) -> str:
    """What a student may see of a failure: their own frames and the exception, never the
    lines of a hidden test."""
    exc = call.excinfo.value
    folder = Path(state.submission).resolve() if state.submission else None
    frames = []
    if folder is not None:
        frames = [
            f for f in traceback.extract_tb(exc.__traceback__)
            if Path(f.filename).resolve().parent == folder
        ]
    for f in frames:
        f.filename = Path(f.filename).name  # the scratch folder's path means nothing to a student
    text = "".join(traceback.format_list(frames)) if frames else ""
    text += "".join(traceback.format_exception_only(type(exc), exc))
    return text.rstrip()


def pytest_warning_recorded(warning_message, when: str, nodeid: str, location) -> None:
    # A stated rule broken outside its own tests (an input changed in place) is a line in the
    # test's feedback, never a failure there.
    if nodeid and issubclass(warning_message.category, InputChangedWarning):
        config = _CONFIG.get("config")
        if config is not None:
            _state(config).emit({"event": "warning", "nodeid": nodeid, "message": str(warning_message.message)})


_CONFIG: dict = {}


@pytest.hookimpl(tryfirst=True)
def pytest_runtest_protocol(item: pytest.Item, nextitem) -> None:
    _state(item.config).emit({"event": "start", "nodeid": item.nodeid})


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call):
    outcome = yield
    report = outcome.get_result()
    state = _state(item.config)
    if state.report is None:
        return
    if report.passed and report.when != "call":
        return
    if report.skipped:
        longrepr = report.longrepr
        status, message = "skipped", longrepr[2] if isinstance(longrepr, tuple) else str(longrepr)
    elif report.failed:
        status = "failed" if report.when == "call" else "error"
        message = _failure_message(call, state) if call.excinfo is not None else report.longreprtext
    else:
        status, message = "passed", ""
    state.emit(
        {
            "event": "result",
            "nodeid": item.nodeid,
            "when": report.when,
            "status": status,
            "message": message,
            "duration": report.duration,
        }
    )

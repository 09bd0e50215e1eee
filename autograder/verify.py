"""`deepgrade verify`: prove an assignment is sound before students see it.

1. The release in assignments/ is in sync with solutions/.
2. Every visible and hidden test passes on the reference.
3. Every test belongs to a part of grading.yml.
4. Every graded test fails on the stub (the released modules).
5. Nothing of the solution leaks: no solution line and no hidden test appears in the release.
6. A quiz (solutions/hwN/quiz.yml) leaks no answer: no released file spells one, and no released
   check can be inverted by a dictionary of the plausible answers (autograder.quiz).
GPU tests cannot be verified without CUDA; they are listed as such, never counted as verified.

`deepgrade verify --published DIR` checks a published student repository instead (LeakCheck):
nothing in DIR, the engine wheel's files included, may hold a solution block or line, a hidden
test (its file, its lines, its name or its input constants), a reference module or a fragment
of one beyond the stub, a bug catalog, a quiz answer (a notebook's written answer, or one of
quiz.yml's answers in any file or as an invertible check), notebook outputs, or a path into the
instructor's solutions/.
"""
from __future__ import annotations

import ast
import builtins
import fnmatch
import hashlib
import io
import json
import keyword
import os
import re
import sys
import tempfile
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from autograder import quiz
from autograder.config import AssignmentConfig, ConfigError, Course, CourseConfig, _test_functions
from autograder.release import build_release, diff_release, find_blocks
from autograder.runner import run_tests

_TRIVIAL = re.compile(r"^(pass|return|else:|try:|finally:|continue|break|\)|\]|\}|[\w.]+ = None)$")
_TEST_DEF = re.compile(r"^\s*def (test\w*)\s*\(", re.MULTILINE)


@dataclass
class VerifyReport:
    assignment: str
    ok: list[str] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)
    unverified: list[str] = field(default_factory=list)

    @property
    def passed(self) -> bool:
        return not self.problems


def _significant(line: str) -> bool:
    s = line.strip()
    return len(s) >= 8 and not s.startswith("#") and not _TRIVIAL.match(s)


def _readable(name: str, data: bytes) -> str:
    """A file's text; for a notebook, its cells' sources (not the JSON they are quoted in)."""
    if name.endswith(".ipynb"):
        from autograder.notebook import cell_sources

        return "\n".join(cell_sources(data))
    return data.decode("utf-8")


def find_leaks(assignment: AssignmentConfig, release: dict[str, bytes]) -> list[str]:
    """Solution lines or hidden tests that appear in the release files (notebooks included)."""
    solution_lines: dict[str, str] = {}
    public_lines: set[str] = set()
    sources = [*assignment.solution_dir.glob("*.py"), *assignment.solution_dir.glob("*.ipynb")]
    for path in sorted(sources):
        text = _readable(path.name, path.read_bytes())
        blocks = find_blocks(text, str(path))
        inside = {n for b in blocks for n in range(b.begin, b.end + 1)}
        for number, line in enumerate(text.splitlines(), start=1):
            if number in inside:
                if _significant(line):
                    solution_lines.setdefault(line.strip(), f"{path.name}:{number}")
            else:
                public_lines.add(line.strip())
    hidden_files = sorted(assignment.hidden_dir.glob("*.py")) if assignment.hidden_dir.is_dir() else []
    hidden_names = {n for p in hidden_files for n in _TEST_DEF.findall(p.read_text(encoding="utf-8"))}
    hidden_texts = {p.read_bytes() for p in hidden_files}
    leaks = []
    for rel, data in sorted(release.items()):
        if rel.startswith("hidden/") or data in hidden_texts:
            leaks.append(f"assignments/{assignment.path}/{rel} is a hidden test file")
            continue
        try:
            text = _readable(rel, data)
        except UnicodeDecodeError:
            continue
        for number, line in enumerate(text.splitlines(), start=1):
            s = line.strip()
            if s in solution_lines and s not in public_lines:
                leaks.append(
                    f"assignments/{assignment.path}/{rel}:{number} holds a solution line "
                    f"(from solutions/{assignment.path}/{solution_lines[s]}): {s[:80]}"
                )
        for name in sorted(set(_TEST_DEF.findall(text)) & hidden_names):
            leaks.append(f"assignments/{assignment.path}/{rel} defines hidden test {name}")
    return leaks


def verify(assignment: AssignmentConfig) -> VerifyReport:
    """Run every check on one assignment. Returns VerifyReport (problems empty when sound)."""
    report = VerifyReport(assignment.name)
    release = build_release(assignment)
    drift = diff_release(assignment, release)
    if drift:
        report.problems += [f"release out of date ({d}); run `deepgrade release {assignment.name}`" for d in drift]
    else:
        report.ok.append("release in sync with solutions/")

    with tempfile.TemporaryDirectory(prefix="deepgrade-verify-") as tmp:
        ref = run_tests(assignment, Path(tmp) / "reference", submission=None)
        stub = run_tests(assignment, Path(tmp) / "stub", submission=assignment.release_dir)

    ref_fail = [o for o in ref.outcomes if o.status in ("failed", "error")]
    for o in ref_fail:
        first = (o.message.strip().splitlines() or [""])[-1][:200]
        report.problems.append(f"reference fails {o.nodeid}: {first}")
    gpu_skipped = [o for o in ref.outcomes if o.status == "skipped" and o.gpu]
    other_skipped = [o for o in ref.outcomes if o.status == "skipped" and not o.gpu]
    report.problems += [f"reference skips {o.nodeid}: {o.message}" for o in other_skipped]
    report.unverified += [f"{o.nodeid}: needs CUDA (not run on this machine)" for o in gpu_skipped]
    if not ref_fail and not other_skipped:
        report.ok.append(f"reference passes all {len(ref.outcomes) - len(gpu_skipped)} tests")

    orphans = [o.nodeid for o in ref.outcomes if o.part is None]
    report.problems += [f"{n} belongs to no part of grading.yml" for n in orphans]
    if not orphans:
        report.ok.append("every test belongs to a part")

    stub_pass = [o for o in stub.outcomes if o.status == "passed" and o.part is not None]
    report.problems += [f"stub passes graded test {o.nodeid}" for o in stub_pass]
    if not stub_pass:
        failing = sum(o.status in ("failed", "error") for o in stub.outcomes)
        report.ok.append(f"stub fails all {failing} graded tests that ran")

    leaks = find_leaks(assignment, release)
    report.problems += leaks
    if not leaks:
        report.ok.append("no solution line or hidden test in the release")
    quiz_path = assignment.solution_dir / quiz.QUIZ_NAME
    if quiz_path.is_file():
        questions = quiz.load_quiz(quiz_path)  # valid: build_release above has checked it
        quiz_leaks = quiz.find_quiz_leaks(assignment.name, questions, release, f"assignments/{assignment.path}")
        report.problems += quiz_leaks
        if not quiz_leaks:
            checked = sum(not isinstance(i, str) for i in quiz.released_checks(release).values())
            report.ok.append(f"quiz: no answer of its {len(questions.questions)} questions in the release, and "
                             f"no check that a dictionary inverts ({checked} checked locally, the others "
                             "only when graded)")
    return report


# --- the published student repository ---------------------------------------------------------

# What a published repository's .gitignore keeps out of git (autograder.publish writes the file
# from these): such files never reach students, so the leak check does not read them.
IGNORED_DIRS = (".venv", "venv", "__pycache__", ".pytest_cache", ".ipynb_checkpoints")
IGNORED_FILES = ("*.py[cod]", "*-submission.zip")
# A hidden test's input constant: a literal list or tuple of at least this many numbers, with
# this many digits in all (four small integers are too common to mean anything). No example
# here: the engine ships, and this check reads it.
MIN_CONSTANTS = 4
MIN_CONSTANT_DIGITS = 8
# A line is evidence of a leak when its code names at least this many things other than
# Python's own words (keywords, builtins, their methods, standard modules): `return None` or
# `start = time.perf_counter()` is everyone's code; `grad = upstream * (z > 0)` is an answer.
MIN_DISTINCT_TOKENS = 3
_GENERIC = frozenset(keyword.kwlist).union(
    dir(builtins), sys.stdlib_module_names, *(dir(t) for t in (str, bytes, list, tuple, dict, set, int, float)))
_TOKEN = re.compile(r"[A-Za-z_]\w*|\d+(?:\.\d+)?")
MIN_CATALOG_TEXT = 12  # shorter catalog strings (a file name, a part) say nothing of the bugs
_SHOWN = 3  # findings shown per file and kind; the others are counted
_MARKER = re.compile(r"^\s*(?:#+|<!--)?\s*(?:BEGIN|END)[ _](?:SOLUTION|HIDDEN TESTS)\b")
# A number in any text, with its sign unless the minus follows an operand (x-1 is not -1).
_NUMBER = re.compile(r"(?:(?<![\w.)\]])-)?(?<![\w.])(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?(?!\w)(?!\.\d)")
_ARCHIVES = (".whl", ".zip")


def _sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _norm(number: float | str) -> str:
    """A number as the leak check compares it: 50 and 50.0 are both '50'."""
    return format(float(number) + 0.0, ".12g")  # + 0.0: -0.0 is '0'


def _distinctive(line: str) -> bool:
    """Whether a stripped line says something of its own (see MIN_DISTINCT_TOKENS)."""
    code = line.split(" #", 1)[0]  # an inline comment is not code
    return _significant(line) and len(set(_TOKEN.findall(code)) - _GENERIC) >= MIN_DISTINCT_TOKENS


def _numeric_stream(text: str) -> tuple[str, list[int]]:
    """(',1,5,3,...,' : the numbers of a text in order, their offsets in the text)."""
    found = list(_NUMBER.finditer(text))
    return "," + ",".join(_norm(m.group()) for m in found) + ",", [m.start() for m in found]


def _literal_numbers(node: ast.AST) -> list[float] | None:
    """The numbers of a literal list/tuple/set made only of numbers (nested ones too), else None."""
    if isinstance(node, ast.UnaryOp) and isinstance(node.op, (ast.USub, ast.UAdd)):
        inner = _literal_numbers(node.operand) if isinstance(node.operand, ast.Constant) else None
        return [-inner[0] if isinstance(node.op, ast.USub) else inner[0]] if inner else None
    if isinstance(node, ast.Constant):
        value = node.value
        return [value] if isinstance(value, (int, float)) and not isinstance(value, bool) else None
    if isinstance(node, (ast.List, ast.Tuple, ast.Set)):
        out: list[float] = []
        for elt in node.elts:
            numbers = _literal_numbers(elt)
            if numbers is None:
                return None
            out += numbers
        return out
    return None


def _input_constants(tree: ast.AST) -> list[tuple[int, list[float]]]:
    """(line, numbers) of each largest literal of at least MIN_CONSTANTS numbers in a module:
    the shapes, values and settings a test feeds the student's code."""
    found, inside = [], set()
    for node in ast.walk(tree):  # breadth first: a literal comes before the literals it holds
        if id(node) in inside or not isinstance(node, (ast.List, ast.Tuple, ast.Set)):
            continue
        numbers = _literal_numbers(node)
        if numbers is None or len(numbers) < MIN_CONSTANTS:
            continue
        digits = sum(len(_norm(n).lstrip("-").replace(".", "").lstrip("0")) or 1 for n in numbers)
        if digits >= MIN_CONSTANT_DIGITS:
            found.append((node.lineno, numbers))
            inside |= {id(n) for n in ast.walk(node)}
    return found


def _strings(value) -> Iterator[str]:
    """Every string in a YAML document (keys left out)."""
    if isinstance(value, str):
        yield value
    elif isinstance(value, dict):
        for v in value.values():
            yield from _strings(v)
    elif isinstance(value, list):
        for v in value:
            yield from _strings(v)


def _cells(data: bytes) -> list[dict] | None:
    """The cells of a notebook, or None when the bytes are not one."""
    try:
        nb = json.loads(data.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError):
        return None
    cells = nb.get("cells") if isinstance(nb, dict) else None
    return [c for c in cells if isinstance(c, dict)] if isinstance(cells, list) else None


def _cell_text(cell: dict) -> str:
    src = cell.get("source", "")
    return "".join(src) if isinstance(src, list) else str(src)


def _notebook_lines(cell: dict) -> Iterator[tuple[int, str, str | None]]:
    """(line number, line, secret kind or None) for a source notebook's cell. Secret: inside
    nbgrader's solution or hidden-test regions, or a whole solution cell without regions (which
    nbgrader replaces by its stub)."""
    lines = _cell_text(cell).splitlines()
    meta = (cell.get("metadata") or {}).get("nbgrader") or {}
    whole = bool(meta.get("solution")) and not any("BEGIN SOLUTION" in line for line in lines)
    answer = "quiz answer" if cell.get("cell_type") == "markdown" else "solution"
    region = None
    for number, line in enumerate(lines, start=1):
        if "BEGIN SOLUTION" in line or "BEGIN HIDDEN TESTS" in line:
            region = answer if "SOLUTION" in line else "hidden test"
        elif "END SOLUTION" in line or "END HIDDEN TESTS" in line:
            region = None
        else:
            yield number, line, region or (answer if whole else None)


@dataclass
class LeakReport:
    """problems: one line per leak found ('path:line: what (from where): text'). files: how
    many files were read; members: how many of them were inside archives (the engine wheel)."""

    problems: list[str] = field(default_factory=list)
    files: int = 0
    members: int = 0


class _Findings:
    """Problems of one file, at most _SHOWN per kind, the rest counted."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.shown: dict[str, list[str]] = {}
        self.more: dict[str, int] = {}

    def add(self, kind: str, line: str) -> None:
        shown = self.shown.setdefault(kind, [])
        if len(shown) < _SHOWN:
            shown.append(line)
        else:
            self.more[kind] = self.more.get(kind, 0) + 1

    def lines(self) -> list[str]:
        out = []
        for kind, shown in self.shown.items():
            out += shown
            if self.more.get(kind):
                out.append(f"{self.name}: ... and {self.more[kind]} more like these ({kind})")
        return out


class LeakCheck:
    """What must never reach students, read once from a course's solutions/, and a scan of a
    published folder for any of it.

    Secret: the lines inside solution blocks of the reference modules and notebooks (notebook
    answers are quiz answers), every line of every file under hidden/ (tests, bug catalogs),
    hidden tests' names and input constants, catalogs' strings, each of those files whole, and
    paths into solutions/. A line, name, constant or string that the release itself shows
    (stubs, visible tests, handouts) is public and never a leak. Every assignment of the course
    counts, published or not.
    """

    def __init__(self, course: CourseConfig) -> None:
        self.course = course
        self.lines: dict[str, tuple[str, str]] = {}  # stripped line -> (kind, where)
        self.files: dict[str, tuple[str, str]] = {}  # sha256 -> (kind, where)
        self.names: dict[str, str] = {}  # hidden test (or hidden test module) name -> where
        self.texts: dict[str, str] = {}  # catalog string -> where
        self.constants: dict[str, tuple[str, str]] = {}  # ',1,5,3,4,' -> (shown, where)
        self.hidden_tests: dict[str, list[tuple[str, str]]] = {}  # assignment -> (file, test)
        self._seen: dict[tuple[str, str], tuple[list[str], int, int]] = {}
        self.quizzes: dict[str, quiz.Quiz] = {}  # assignment -> its quiz (with the answers)
        self.quiz_errors: list[str] = []
        public: list[str] = []
        secret: list[tuple[str, str, str]] = []  # (line, kind, where)
        names: dict[str, str] = {}
        texts: dict[str, str] = {}
        constants: list[tuple[list[float], str]] = []
        for a in course.assignments.values():
            if a.solution_dir.is_dir():
                self._read(a, public, secret, names, texts, constants)
        public_text = "\n".join(public)
        public_lines = {line.strip() for text in public for line in text.splitlines()}
        # A hidden test may share its name with a visible one; any other mention of it, in a
        # handout too, gives it away.
        visible = {name for a in course.assignments.values() if a.solution_dir.is_dir()
                   for path in a.solution_dir.glob("test_*.py") for name in [path.stem, *_safe_tests(path)]}
        public_numbers = "|".join(_numeric_stream(text)[0] for text in public)
        for line, kind, where in secret:
            s = line.strip()
            if _distinctive(s) and s not in public_lines:
                self.lines.setdefault(s, (kind, where))
        self.names = {n: w for n, w in names.items() if n not in visible}
        self.texts = {t: w for t, w in texts.items() if t not in public_text}
        for numbers, where in constants:
            key = "," + ",".join(_norm(n) for n in numbers) + ","
            if key not in public_numbers:
                shown = ", ".join(_norm(n) for n in numbers)
                self.constants.setdefault(key, (shown if len(shown) <= 60 else shown[:57] + "...", where))
        self._name_re = re.compile(
            r"(?<!\w)(" + "|".join(sorted(map(re.escape, self.names), key=len, reverse=True)) + r")(?!\w)"
        ) if self.names else None
        paths = "|".join(sorted(re.escape(a.path) for a in course.assignments.values()))
        patterns = [rf"(?<![\w.-])solutions[/\\](?:{paths})(?![\w-])"]
        root = str(course.root.resolve())
        if root.count(os.sep) >= 2:  # '/home/prof/course', never a bare '/' or '/srv'
            patterns.append(re.escape(root) + r"(?![\w-])")
        self._path_re = re.compile("|".join(patterns))

    def _read(self, a: AssignmentConfig, public: list[str], secret: list, names: dict, texts: dict,
              constants: list) -> None:
        files = sorted(
            p for p in a.solution_dir.rglob("*")
            if p.is_file() and not any(part in IGNORED_DIRS for part in p.parts)
            and not any(fnmatch.fnmatch(p.name, g) for g in IGNORED_FILES)
        )
        tests = self.hidden_tests.setdefault(a.name, [])
        for path in files:
            rel = path.relative_to(a.solution_dir).as_posix()
            where = f"solutions/{a.path}/{rel}"
            data = path.read_bytes()
            try:
                text = data.decode("utf-8")
            except UnicodeDecodeError:
                text = None
            if rel in (quiz.QUIZ_NAME, quiz.ANSWERS_NAME) and (a.solution_dir / quiz.QUIZ_NAME).is_file():
                # The quiz's answers: never published as they are; scan() checks what is.
                self.files[_sha(data)] = ("quiz with its answers", where)
                if rel == quiz.QUIZ_NAME:
                    try:
                        self.quizzes[a.name] = quiz.load_quiz(path)
                    except quiz.QuizError as exc:
                        self.quiz_errors.append(str(exc))
                continue
            if rel.startswith("hidden/"):
                catalog = "bugs" in rel.split("/") or path.suffix in (".yml", ".yaml")
                kind = "bug catalog" if catalog else "hidden test" if path.suffix == ".py" else "hidden file"
                self.files[_sha(data)] = (kind, where)
                if text is None:
                    continue
                secret += [(line, kind, f"{where}:{n}") for n, line in enumerate(text.splitlines(), start=1)]
                if path.suffix == ".py":
                    names[path.stem] = where
                    try:
                        tree = ast.parse(text)
                    except SyntaxError:
                        continue  # its lines still count; `deepgrade verify` reports the error
                    for test in _test_functions(path):
                        names.setdefault(test, where)
                        tests.append((path.name, test))
                    constants += [(numbers, f"{where}:{n}") for n, numbers in _input_constants(tree)]
                elif catalog:
                    try:
                        doc = yaml.safe_load(text)
                    except yaml.YAMLError:
                        continue
                    for s in _strings(doc):
                        s = s.strip()
                        if len(s) >= MIN_CATALOG_TEXT and "\n" not in s:
                            texts.setdefault(s, where)
            elif text is None:
                continue
            elif path.suffix == ".py":
                blocks = find_blocks(text, where)
                inside = {n for b in blocks for n in range(b.begin, b.end + 1)}
                shown = []
                for n, line in enumerate(text.splitlines(), start=1):
                    if n in inside:
                        secret.append((line, "solution", f"{where}:{n}"))
                    else:
                        shown.append(line)
                public.append("\n".join(shown))
                if blocks:
                    self.files[_sha(data)] = ("reference module", where)
            elif path.suffix == ".ipynb":
                shown, hides = [], False
                for index, cell in enumerate(_cells(data) or [], start=1):
                    for n, line, kind in _notebook_lines(cell):
                        if kind is None:
                            shown.append(line)
                        else:
                            hides = True
                            secret.append((line, kind, f"{where} (cell {index}, line {n})"))
                public.append("\n".join(shown))
                if hides:
                    self.files[_sha(data)] = ("reference notebook", where)
            else:
                public.append(text)

    # -- the scan --

    def scan(self, folder: Path) -> LeakReport:
        """Every leak in the published folder (files its .gitignore keeps out of git are
        skipped, archives such as the engine wheel are read member by member)."""
        folder = Path(folder)
        report = LeakReport()
        for rel, data in _published_files(folder):
            key = (rel, _sha(data))
            if key not in self._seen:  # publish scans its new content, then the folder it wrote
                counts = LeakReport()
                self._seen[key] = (self._check(rel, data, counts), counts.files, counts.members)
            problems, files, members = self._seen[key]
            report.problems += problems
            report.files += files
            report.members += members
        report.problems += self._check_config(folder)
        report.problems += self._check_quizzes(folder)
        return report

    def _check_quizzes(self, folder: Path) -> list[str]:
        """No published file of an assignment holds one of its quiz answers in plain text, and
        no published check of it can be inverted by a dictionary (autograder.quiz)."""
        problems = list(self.quiz_errors)
        for name, questions in self.quizzes.items():
            released = folder / "assignments" / self.course.assignment(name).path
            if not released.is_dir():
                continue
            files = {rel: data for rel, data in _published_files(released)}
            problems += quiz.find_quiz_leaks(name, questions, files, released.relative_to(folder).as_posix())
        return problems

    def _check(self, rel: str, data: bytes, report: LeakReport, depth: int = 0) -> list[str]:
        report.files += 1
        report.members += depth > 0
        found = _Findings(rel)
        parts = rel.split("/")
        if "hidden" in parts[:-1]:
            found.add("folder", f"{rel}: inside a hidden/ folder, which is never published")
        if parts[0] == "solutions":
            found.add("folder", f"{rel}: inside solutions/, which is never published")
        copy = self.files.get(_sha(data))
        if copy is not None:
            found.add("copy", f"{rel}: a copy of {copy[1]} (a {copy[0]})")
        if rel.endswith(_ARCHIVES):
            try:
                with zipfile.ZipFile(io.BytesIO(data)) as zf:
                    members = [(i.filename, zf.read(i)) for i in zf.infolist() if not i.is_dir()]
            except (zipfile.BadZipFile, OSError) as exc:
                return found.lines() + [f"{rel}: cannot be read as an archive ({exc}), so it cannot be checked"]
            out = found.lines()
            for name, member in members:
                out += self._check(f"{rel}/{name}", member, report, depth + 1)
            return out
        if rel.endswith(".ipynb"):
            cells = _cells(data)
            if cells is None:
                return found.lines() + [f"{rel}: not a readable notebook, so it cannot be checked"]
            chunks = []
            for index, cell in enumerate(cells, start=1):
                chunks.append((f"{rel} (cell {index}, line ", ")", _cell_text(cell)))
                if cell.get("outputs"):
                    found.add("outputs", f"{rel} (cell {index}): holds notebook outputs "
                              f"({len(cell['outputs'])}); the release clears them")
        else:
            try:
                chunks = [(f"{rel}:", "", data.decode("utf-8"))]
            except UnicodeDecodeError:
                return found.lines()  # a figure or other binary file: only a whole copy can leak
        for before, after, text in chunks:
            self._check_text(before, after, text, found)
        return found.lines()

    def _check_text(self, before: str, after: str, text: str, found: _Findings) -> None:
        """Check one text (a file, or a notebook cell): a line n is reported at before+n+after."""
        for n, line in enumerate(text.splitlines(), start=1):
            s = line.strip()
            at = f"{before}{n}{after}"
            if _MARKER.match(line):
                found.add("marker", f"{at}: a solution marker: {s[:80]}")
            if s in self.lines:
                kind, origin = self.lines[s]
                found.add(kind, f"{at}: a line of a {kind} ({origin}): {s[:80]}")
            if self._name_re is not None:
                for name in dict.fromkeys(self._name_re.findall(line)):
                    found.add("name", f"{at}: names hidden test {name} ({self.names[name]})")
            for match in self._path_re.finditer(line):
                found.add("path", f"{at}: a path into the instructor's solutions: {match.group()}")
        for t, origin in self.texts.items():
            at = text.find(t)
            if at >= 0:
                line = text.count("\n", 0, at) + 1
                found.add("catalog", f"{before}{line}{after}: text of a bug catalog ({origin}): {t[:80]}")
        stream, offsets = _numeric_stream(text)
        for key, (shown, origin) in self.constants.items():
            at = stream.find(key)
            if at >= 0:
                first = offsets[stream.count(",", 0, at + 1) - 1]
                line = text.count("\n", 0, first) + 1
                found.add("constants", f"{before}{line}{after}: the input constants of a hidden test "
                          f"({origin}): {shown}")

    def _check_config(self, folder: Path) -> list[str]:
        """The published grading.yml may name visible tests only: a pattern that matches no
        published test but does match a hidden one describes the hidden tests."""
        path = folder / "grading.yml"
        if not path.is_file():
            return []
        try:
            raw = Course.model_validate(yaml.safe_load(path.read_text(encoding="utf-8")))
        except Exception as exc:  # YAML or schema: either way students could not use it
            return [f"grading.yml: not a course configuration students can use: {str(exc)[:300]}"]
        problems = []
        for name, a in raw.assignments.items():
            released = folder / "assignments" / (a.path or name)
            visible = [(p.name, t) for p in sorted(released.glob("test_*.py")) for t in _safe_tests(p)]
            hidden = self.hidden_tests.get(name, [])
            for part_name, part in a.parts.items():
                for pattern in part.tests:
                    if not pattern_matches(pattern, visible) and pattern_matches(pattern, hidden):
                        problems.append(f"grading.yml: assignments.{name}.parts.{part_name}.tests: "
                                        f"'{pattern}' matches only hidden tests")
        return problems


def pattern_matches(pattern: str, tests: list[tuple[str, str]]) -> bool:
    """Whether a grading.yml test pattern matches one of (file name, test name)."""
    return any(fnmatch.fnmatchcase(f"{f}::{t}" if "::" in pattern else t, pattern) for f, t in tests)


def _safe_tests(path: Path) -> list[str]:
    try:
        return _test_functions(path)
    except SyntaxError:
        return []


def _published_files(folder: Path) -> Iterator[tuple[str, bytes]]:
    """(path relative to folder, content) of every file git would publish, sorted: .git,
    virtual environments and what the published .gitignore names are left out."""
    for dirpath, dirnames, filenames in os.walk(folder):
        here = Path(dirpath)
        dirnames[:] = sorted(
            d for d in dirnames
            if d != ".git" and d not in IGNORED_DIRS and not (here / d / "pyvenv.cfg").exists()
        )
        for name in sorted(filenames):
            if not any(fnmatch.fnmatch(name, g) for g in IGNORED_FILES):
                path = here / name
                yield path.relative_to(folder).as_posix(), path.read_bytes()


def find_published_leaks(course: CourseConfig, folder: Path) -> LeakReport:
    """Run LeakCheck(course) on a published folder. Returns LeakReport (problems empty: clean).
    Raises ConfigError when the folder is missing, or when the course has no solutions/ to
    compare with (the published grading.yml itself, say: a check against nothing passes)."""
    if not Path(folder).is_dir():
        raise ConfigError(f"{folder}: no such folder (expected a repository written by `deepgrade publish`)")
    if not any(a.solution_dir.is_dir() for a in course.assignments.values()):
        raise ConfigError(f"{course.path}: no assignment of it has a folder in solutions/, so there is nothing "
                          "to check for: run the leak check with the instructor's grading.yml (--config)")
    return LeakCheck(course).scan(Path(folder))

"""Concept checks: solutions/hwN/quiz.yml (questions and answers), answers.yml (the student's),
the checks the release carries, and the grade of one answer.

A quiz question is one of three kinds:

- ``choice``: options ``a``, ``b``, ...; one right option, or several (``multiple: true``);
  each option may carry ``feedback``, the explanation shown when a student picks it wrongly.
- ``numeric``: a number stated to a ``precision`` (``decimals: d`` or ``significant: s``) and
  graded within a ``tolerance`` (``abs: x`` or ``rel: r``), with a ``hint`` for wrong answers.
- ``exact``: a short text such as a shape ``(N, F, H', W')``, compared after normalization
  (case, spaces, brackets and quote marks do not matter), with a ``hint``.

Grading happens on the trusted side only, against the plain answers of quiz.yml: the student's
answers.yml is data, read with ``yaml.safe_load`` within a size limit, never code.

What the release may say about an answer (``release_quiz``, enforced by ``find_quiz_leaks``):
anything that lets a student check an answer offline is an oracle, and an oracle can be asked
about every plausible answer. So the release holds no answer and no full hash of one. For a
question whose plausible answers are many (``dictionary``: every set of options, every number
of the stated precision within a factor of ten of the answer, every arrangement of the
symbols in the prompt), it holds a *truncated* salted hash: ``bits`` bits of
sha256(salt, question, answer), with ``bits`` chosen as large as possible while at least
MIN_CANDIDATES entries of that dictionary still match it. A student's right answer always
passes the local check; a wrong one passes with probability 2**-bits (the grade is exact);
and someone who tries the whole dictionary is left with at least MIN_CANDIDATES candidates,
not the answer. Where that leaves fewer than MIN_CHECK_BITS bits (multiple choice, small
integers, short shapes), the release holds no check at all and the local test says only that
the question is answered and well formed. The salt is public (it must be, for the local check
to run); a secret salt would protect nothing the truncation does not, since students could
not check anything with it.
"""
from __future__ import annotations

import hashlib
import itertools
import math
import re
from decimal import ROUND_HALF_EVEN, Decimal, InvalidOperation, localcontext
from pathlib import Path
from typing import Literal, Union

import numpy as np
import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

QUIZ_NAME = "quiz.yml"  # solutions/hwN/quiz.yml: the source; assignments/hwN/quiz.yml: the release
ANSWERS_NAME = "answers.yml"
LOCAL_TEST = "test_quiz_answer"  # the released test that checks answers.yml locally (test_quiz.py)
MAX_ANSWERS_BYTES = 64 * 1024
MAX_LIST = 16  # items in one answer (a set of options, the parts of a shape)
MAX_TEXT = 200  # characters in one answer
MAX_EXPONENT = 40  # numbers from 1e-40 to 1e40 in size
MIN_SEARCHED_DIGITS = 3  # an answer of fewer significant digits (0.1, 55) is in any text: not searched
MIN_CANDIDATES = 16  # a released check must match at least this many dictionary entries
MIN_CHECK_BITS = 8  # below this a local check would pass wrong answers too often to mean much
MAX_CHECK_BITS = 32
DICTIONARY_CAP = 1 << 17  # nearby numbers tried per question (the nearest ones are kept)
_LETTERS = "abcdefgh"


class QuizError(Exception):
    """quiz.yml is wrong: the message names the file, the question and what was expected."""


class AnswersError(Exception):
    """answers.yml cannot be read: the message names the file (and line) and the problem."""


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Option(_Strict):
    text: str = Field(min_length=1)
    feedback: str = Field("", description="shown in the graded feedback when this option is picked wrongly")


class Precision(_Strict):
    decimals: int | None = Field(None, ge=0, le=12)
    significant: int | None = Field(None, ge=1, le=12)

    @model_validator(mode="after")
    def _one(self) -> "Precision":
        if (self.decimals is None) == (self.significant is None):
            raise ValueError("give exactly one of decimals or significant")
        return self

    def describe(self) -> str:
        if self.decimals is not None:
            return "a whole number" if self.decimals == 0 else f"{self.decimals} decimal places"
        return f"{self.significant} significant figures"


class Tolerance(_Strict):
    abs: float | None = Field(None, ge=0)
    rel: float | None = Field(None, ge=0)

    @model_validator(mode="after")
    def _one(self) -> "Tolerance":
        if (self.abs is None) == (self.rel is None):
            raise ValueError("give exactly one of abs or rel")
        return self


Answer = Union[int, float, str, list[str]]


class Question(_Strict):
    id: str = Field(pattern=r"^[a-z][a-z0-9_]{0,31}$")
    kind: Literal["choice", "numeric", "exact"]
    prompt: str = Field(min_length=1)
    points: float = Field(gt=0)
    part: str
    options: dict[str, Option] = {}
    multiple: bool = False
    answer: Answer
    precision: Precision | None = None
    tolerance: Tolerance | None = None
    hint: str = ""

    @model_validator(mode="after")
    def _kind_rules(self) -> "Question":
        if self.kind == "choice":
            if not 2 <= len(self.options) <= len(_LETTERS) or list(self.options) != list(_LETTERS[:len(self.options)]):
                raise ValueError(f"a choice question needs options a, b, ... in order (2 to {len(_LETTERS)})")
            right = self.answer if isinstance(self.answer, list) else [self.answer]
            if not right or any(not isinstance(r, str) or r not in self.options for r in right):
                raise ValueError(f"answer must be option letters among {list(self.options)}")
            if len(set(right)) != len(right) or (not self.multiple and len(right) != 1):
                raise ValueError("answer: one distinct letter, or a list of them with multiple: true")
            if self.precision or self.tolerance:
                raise ValueError("precision and tolerance are for numeric questions")
        elif self.kind == "numeric":
            if isinstance(self.answer, (list, str)) or isinstance(self.answer, bool):
                raise ValueError("answer must be a number")
            if self.precision is None or self.tolerance is None:
                raise ValueError("a numeric question needs precision and tolerance")
            if self.options or self.multiple:
                raise ValueError("options are for choice questions")
            if not self.hint:
                raise ValueError("a numeric question needs a hint for wrong answers")
            if not math.isfinite(self.answer):
                raise ValueError("answer must be finite")
            if not within(rounded(self.answer, self.precision), self.answer, self.tolerance):
                raise ValueError(f"the answer rounded to {self.precision.describe()} is outside the "
                                 "tolerance: widen the tolerance or state more precision")
        else:
            accepted = self.answer if isinstance(self.answer, list) else [self.answer]
            if not accepted or any(not isinstance(a, str) or not normalize_text(a) for a in accepted):
                raise ValueError("answer must be a text, or a list of accepted texts")
            if self.options or self.multiple or self.precision or self.tolerance:
                raise ValueError("options, precision and tolerance are not for exact questions")
            if not self.hint:
                raise ValueError("an exact question needs a hint for wrong answers")
        return self

    @property
    def accepted(self) -> list[str]:
        """The canonical forms of the accepted answers (trusted side only)."""
        if self.kind == "choice":
            return [canonical_choice(self.answer if isinstance(self.answer, list) else [self.answer])]
        if self.kind == "numeric":
            return [canonical_number(rounded(self.answer, self.precision))]
        return sorted({normalize_text(a) for a in (self.answer if isinstance(self.answer, list) else [self.answer])})

    def how_to_answer(self) -> str:
        if self.kind == "choice":
            return ("a list of option letters, e.g. [a, c]" if self.multiple else "one option letter, e.g. b")
        if self.kind == "numeric":
            return f"a number, rounded to {self.precision.describe()}"
        return "a short text, e.g. (N, C, H, W) (case, spaces and brackets do not matter)"


class Quiz(_Strict):
    title: str = ""
    questions: list[Question] = Field(min_length=1)

    @model_validator(mode="after")
    def _unique(self) -> "Quiz":
        ids = [q.id for q in self.questions]
        twice = sorted({i for i in ids if ids.count(i) > 1})
        if twice:
            raise ValueError(f"question ids given twice: {twice}")
        return self

    def question(self, qid: str) -> Question:
        for q in self.questions:
            if q.id == qid:
                return q
        raise KeyError(qid)


# --- normal forms -------------------------------------------------------------------------------

def rounded(value: float | int | Decimal, precision: Precision) -> Decimal:
    """`value` rounded half-to-even to the stated precision, as a Decimal (exact in decimal:
    0.1 is 0.1, not the float nearest it)."""
    d = value if isinstance(value, Decimal) else Decimal(repr(value) if isinstance(value, float) else value)
    if d == 0:
        return Decimal(0)
    if precision.decimals is not None:
        exp = -precision.decimals
    else:
        exp = d.adjusted() - precision.significant + 1
    with localcontext() as ctx:
        ctx.prec = 2 * MAX_EXPONENT + 20  # every digit of any number parse_number lets through
        return d.quantize(Decimal(1).scaleb(exp), rounding=ROUND_HALF_EVEN)


def canonical_number(d: Decimal) -> str:
    """One spelling per value: 1.50 and 1.5 are '1.5', 0 and -0 are '0'."""
    if d == 0:
        return "0"
    return format(d.normalize(), "f") if abs(d.adjusted()) < 16 else str(d.normalize())


def within(x: Decimal, answer: float, tol: Tolerance) -> bool:
    diff = abs(x - Decimal(repr(float(answer))))
    limit = Decimal(repr(tol.abs)) if tol.abs is not None else Decimal(repr(tol.rel)) * abs(Decimal(repr(float(answer))))
    return diff <= limit * (1 + Decimal("1e-12"))


def canonical_choice(letters: list[str]) -> str:
    return ",".join(sorted(set(letters)))


def normalize_text(text: str) -> str:
    """A short answer's normal form: lower case, no spaces, any brackets as (), any quote mark
    as ', no trailing comma: '[N, F, H′, W′]' and "(n,f,h',w')" are the same."""
    t = text.strip().lower()
    t = re.sub(r"\s+", "", t)
    t = t.translate(str.maketrans({"[": "(", "]": ")", "{": "(", "}": ")", "\u2032": "'", "\u2019": "'", "`": "'"}))
    while t.startswith("(") and t.endswith(")") and _balanced(t[1:-1]):
        t = t[1:-1]
    return t.rstrip(",")


def _balanced(t: str) -> bool:
    depth = 0
    for ch in t:
        depth += ch == "("
        depth -= ch == ")"
        if depth < 0:
            return False
    return depth == 0


class _Malformed(Exception):
    """An answer of the wrong form; the message tells the student how to write it."""


def canonical_answer(q: Question, raw) -> str:
    """The canonical form of a student's answer to q. Raises _Malformed (not blank: a blank is
    None and is the caller's to report)."""
    if q.kind == "choice":
        items = raw if isinstance(raw, list) else [raw]
        if not items or len(items) > MAX_LIST or any(not isinstance(i, str) for i in items):
            raise _Malformed(f"expected {q.how_to_answer()}")
        letters = [i.strip().lower().rstrip(").") for i in items]
        bad = [i for i in letters if i not in q.options]
        if bad:
            raise _Malformed(f"{', '.join(map(repr, bad))} is not an option (the options are {', '.join(q.options)})")
        if not q.multiple and len(set(letters)) != 1:
            raise _Malformed("this question has one right option: give one letter")
        return canonical_choice(letters)
    if q.kind == "numeric":
        return canonical_number(rounded(parse_number(raw, q), q.precision))
    items = raw if isinstance(raw, list) else [raw]
    if not items or len(items) > MAX_LIST or any(isinstance(i, (dict, list, bool)) or i is None for i in items):
        raise _Malformed(f"expected {q.how_to_answer()}")
    text = str(items[0]) if not isinstance(raw, list) else "(" + ",".join(str(i) for i in items) + ")"
    if len(text) > MAX_TEXT:
        raise _Malformed(f"an answer of at most {MAX_TEXT} characters is expected")
    return normalize_text(text)


def parse_number(raw, q: Question) -> Decimal:
    if isinstance(raw, bool) or not isinstance(raw, (int, float, str)):
        raise _Malformed(f"expected {q.how_to_answer()}, got {type(raw).__name__}")
    text = raw.strip().replace("_", "").replace(",", "") if isinstance(raw, str) else repr(raw)
    if len(text) > 64:
        raise _Malformed("a number of at most 64 characters is expected")
    try:
        d = Decimal(text)
    except InvalidOperation:
        raise _Malformed(f"{raw!r} is not a number (write it as 0.0316, 3.16e-2 or 34944)") from None
    if not d.is_finite() or (d != 0 and abs(d.adjusted()) > MAX_EXPONENT):
        raise _Malformed(f"the answer must be a finite number between 1e-{MAX_EXPONENT} and 1e{MAX_EXPONENT} in size")
    return d


# --- quiz.yml -----------------------------------------------------------------------------------

def load_quiz(path: Path | str) -> Quiz:
    """Load and validate a quiz.yml. Raises QuizError naming the file and the key."""
    from autograder.config import _format_validation_error, _UniqueKeyLoader

    path = Path(path)
    try:
        data = yaml.load(path.read_text(encoding="utf-8"), Loader=_UniqueKeyLoader)  # noqa: S506 - a SafeLoader
    except OSError as exc:
        raise QuizError(f"{path}: cannot be read ({exc.strerror})") from None
    except yaml.YAMLError as exc:
        raise QuizError(f"{path}: not valid YAML: {exc}") from None
    if not isinstance(data, dict):
        raise QuizError(f"{path}: expected a mapping with 'questions' at the top level")
    try:
        quiz = Quiz.model_validate(data)
    except ValidationError as exc:
        raise QuizError(_name_questions(_format_validation_error(path, exc), data)) from None
    return quiz


def _name_questions(text: str, data: dict) -> str:
    """'questions.3.answer' -> 'questions.3 (id q4).answer': the id is what authors search for."""
    questions = data.get("questions") if isinstance(data.get("questions"), list) else []

    def named(m: re.Match) -> str:
        i = int(m.group(1))
        qid = questions[i].get("id") if i < len(questions) and isinstance(questions[i], dict) else None
        return f"questions.{i} (id {qid})" if qid else m.group(0)

    return re.sub(r"questions\.(\d+)", named, text)


def check_parts(quiz: Quiz, assignment, path: Path | str) -> None:
    """The questions against grading.yml: each names a part of the assignment that owns the
    quiz test, and the points of a part's questions are equal and add up to its points (a
    part's points are shared equally by its tests). Raises QuizError."""
    by_part: dict[str, list[Question]] = {}
    for q in quiz.questions:
        if q.part not in assignment.parts:
            raise QuizError(f"{path}: question {q.id}: part '{q.part}' is not a part of {assignment.name} in "
                            f"grading.yml (its parts: {', '.join(assignment.parts)})")
        by_part.setdefault(q.part, []).append(q)
    owner = assignment.part_of("test_quiz.py", LOCAL_TEST)
    if owner is None or set(by_part) != {owner}:
        raise QuizError(f"{path}: every question must be in the part whose tests match {LOCAL_TEST} "
                        f"(grading.yml gives it to {owner!r}; the questions name {sorted(by_part)})")
    qs = by_part[owner]
    total = assignment.parts[owner].points
    points = {q.points for q in qs}
    if len(points) != 1 or not math.isclose(sum(q.points for q in qs), total):
        raise QuizError(f"{path}: the {len(qs)} questions of part {owner} are worth {sorted(points)} points each; "
                        f"grading.yml gives the part {total:g} points, shared equally: give each question "
                        f"{total / len(qs):g} points")


# --- answers.yml --------------------------------------------------------------------------------

def read_answers(path: Path | str) -> dict:
    """The student's answers: question id -> raw answer (None when blank). Data from the
    student: read with yaml.safe_load, at most MAX_ANSWERS_BYTES. Raises AnswersError naming
    the file (and the line of a YAML error)."""
    path = Path(path)
    name = path.name
    try:
        size = path.stat().st_size
    except FileNotFoundError:
        raise AnswersError(f"{name} was not submitted: every quiz question scores 0") from None
    if size > MAX_ANSWERS_BYTES:
        raise AnswersError(f"{name} is {size} bytes, over the {MAX_ANSWERS_BYTES}-byte limit for answers")
    return read_answers_text(path.read_bytes(), name)


def read_answers_text(data: bytes, name: str = ANSWERS_NAME) -> dict:
    """read_answers on the bytes of an answers.yml (`name` is what errors call it)."""
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise AnswersError(f"{name}: not UTF-8 text (byte {exc.start})") from None
    try:
        data = yaml.safe_load(text)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        where = f" line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        raise AnswersError(f"{name}:{where}: not valid YAML ({exc.problem or exc.context}); write one "
                           "'id: answer' per line, as in the released file") from None
    except yaml.YAMLError as exc:
        raise AnswersError(f"{name}: not valid YAML ({exc})") from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise AnswersError(f"{name}: expected 'id: answer' lines (a mapping), got a {type(data).__name__}")
    return {str(k): v for k, v in data.items()}


def blank_answers_warning(data: bytes) -> str | None:
    """What `deepgrade submit` says of an answers.yml with blanks or that cannot be read, or None."""
    try:
        answers = read_answers_text(data)
    except AnswersError as exc:
        return f"{exc} (every quiz question would score 0)"
    blank = [k for k, v in answers.items() if _blank(v)]
    if not answers or blank:
        return f"{ANSWERS_NAME}: {len(blank) if answers else 'every'} question(s) still blank"
    return None


def _blank(raw) -> bool:
    return raw is None or (isinstance(raw, str) and not raw.strip()) or raw == []


def grade_answer(q: Question, answers: dict) -> tuple[bool, str]:
    """(right, feedback) for one question, against the plain answer (trusted side only). The
    feedback never states the answer: for a wrong option, that option's explanation; for a
    wrong number or text, the hint."""
    raw = answers.get(q.id)
    if _blank(raw):
        return False, f"{q.id}: not answered (expected {q.how_to_answer()})"
    try:
        given = canonical_answer(q, raw)
    except _Malformed as exc:
        return False, f"{q.id}: {exc}"
    if q.kind == "choice":
        if given in q.accepted:
            return True, ""
        right = set(q.accepted[0].split(","))
        picked = set(given.split(","))
        lines = [f"{q.id}: not right."]
        lines += [f"  ({o}) {q.options[o].feedback}" for o in sorted(picked - right) if q.options[o].feedback]
        if q.multiple and right - picked:
            lines.append("  at least one right option is missing")
        return False, "\n".join(lines)
    if q.kind == "numeric":
        if within(Decimal(given), q.answer, q.tolerance):
            return True, ""
        return False, f"{q.id}: {given} is not right. Hint: {q.hint}"
    if given in q.accepted:
        return True, ""
    return False, f"{q.id}: not right. Hint: {q.hint}"


# --- the released checks ------------------------------------------------------------------------

def salt(assignment: str, qid: str) -> str:
    """The public salt of one question: fixed, so that a release is reproducible."""
    return hashlib.sha256(f"deepgrade-quiz/{assignment}/{qid}".encode()).hexdigest()[:16]


def _digests(salt_: str, qid: str, candidates) -> np.ndarray:
    """The first 8 bytes of sha256(salt, id, candidate) of each candidate, as uint64."""
    head = f"{salt_}\0{qid}\0".encode()
    out = [int.from_bytes(hashlib.sha256(head + c.encode()).digest()[:8], "big") for c in candidates]
    return np.array(out, dtype=np.uint64)


def check_value(salt_: str, qid: str, canonical: str, bits: int) -> int:
    return int(_digests(salt_, qid, [canonical])[0]) >> (64 - bits)


def dictionary(q: Question) -> list[str]:
    """The answers a guesser would try (canonical forms): every set of options; every number of
    the stated precision within a factor of ten of the answer (both signs, the DICTIONARY_CAP
    nearest, and 0); every tuple of the answer's length made of its own tokens and the numbers
    and symbols of the prompt (repeats allowed), up to about DICTIONARY_CAP."""
    if q.kind == "choice":
        letters = list(q.options)
        return [",".join(c) for r in range(1, len(letters) + 1) for c in itertools.combinations(letters, r)]
    if q.kind == "numeric":
        return [canonical_number(v) for v in _nearby(q)]
    accepted = q.accepted
    # What a guesser would build the answer from: its own tokens, and the numbers and symbols
    # (N, HH, H') of the prompt. Nothing else: padding the dictionary with words nobody would
    # try would make a check look safer than it is.
    vocab = list(dict.fromkeys(
        [t for a in accepted for t in a.strip("()").split(",")]
        + [normalize_text(t) for t in re.findall(r"(?<![\w'])(?:\d+|[A-Z]{1,2}'?)(?![\w])", q.prompt)]))
    out: set[str] = set(accepted)
    for n in sorted({len(a.split(",")) for a in accepted}):
        for k in range(1, len(vocab) + 1):
            if len(out) >= DICTIONARY_CAP:
                break
            # every tuple of length n over vocab[:k] that uses vocab[k-1]: the new ones at this k
            for combo in itertools.product(vocab[:k], repeat=n):
                if vocab[k - 1] in combo:
                    out.add(",".join(combo))
    return sorted(out)


def _nearby(q: Question) -> list[Decimal]:
    a = Decimal(repr(float(q.answer)))
    mag = abs(a) if a != 0 else Decimal(1)
    lo, hi = mag / 10, mag * 10
    p = q.precision
    values: list[Decimal] = []
    if p.decimals is not None:
        step = Decimal(1).scaleb(-p.decimals)
        k_lo, k_hi = int((lo / step).to_integral_value("ROUND_CEILING")), int((hi / step).to_integral_value("ROUND_FLOOR"))
        center = int((abs(a) / step).to_integral_value())
        k_lo, k_hi = max(k_lo, center - DICTIONARY_CAP // 2), min(k_hi, center + DICTIONARY_CAP // 2)
        values = [k * step for k in range(max(k_lo, 1), k_hi + 1)]
    else:
        s = p.significant
        for e in range(lo.adjusted(), hi.adjusted() + 1):
            unit = Decimal(1).scaleb(e - s + 1)
            m_lo, m_hi = 10 ** (s - 1), 10 ** s - 1
            values += [m * unit for m in range(m_lo, m_hi + 1) if lo <= m * unit <= hi]
        if len(values) > DICTIONARY_CAP:
            values.sort(key=lambda v: abs(v - abs(a)))
            values = values[:DICTIONARY_CAP]
    return [Decimal(0), *values, *(-v for v in values)]


def choose_check(assignment: str, q: Question) -> dict | None:
    """The local check of q: {'salt', 'bits', 'hash'} with as many bits as leave at least
    MIN_CANDIDATES dictionary entries matching, or None when that is under MIN_CHECK_BITS bits
    (or the question has several accepted forms: each would need a hash of its own, and
    together they would narrow the guess)."""
    if len(q.accepted) != 1:
        return None
    s = salt(assignment, q.id)
    words = dictionary(q)
    if len(words) < MIN_CANDIDATES << MIN_CHECK_BITS:
        return None
    digests = _digests(s, q.id, words)
    target = int(_digests(s, q.id, q.accepted)[0])
    for bits in range(MAX_CHECK_BITS, MIN_CHECK_BITS - 1, -1):
        shift = np.uint64(64 - bits)
        if int(np.count_nonzero((digests >> shift) == np.uint64(target >> (64 - bits)))) >= MIN_CANDIDATES:
            return {"salt": s, "bits": bits, "hash": format(target >> (64 - bits), "x")}
    return None


def release_quiz(assignment: str, quiz: Quiz) -> dict:
    """The released quiz.yml as data: the questions without their answers or the options'
    explanations, each with its local check (or none)."""
    out = []
    for q in quiz.questions:
        points = int(q.points) if float(q.points).is_integer() else q.points
        item: dict = {"id": q.id, "kind": q.kind, "points": points, "prompt": q.prompt.strip() + "\n"}
        if q.kind == "choice":
            item["options"] = {k: o.text for k, o in q.options.items()}
            item["multiple"] = q.multiple
        if q.precision is not None:
            item["precision"] = q.precision.model_dump(exclude_none=True)
        if q.hint:
            item["hint"] = q.hint.strip()
        check = choose_check(assignment, q)
        item["check"] = check if check is not None else "answered"
        out.append(item)
    return {"title": quiz.title, "questions": out}


class _BlockDumper(yaml.SafeDumper):
    """Multi-line texts (the prompts) as YAML literal blocks, which read as they were written."""


_BlockDumper.add_representer(str, lambda dumper, text: dumper.represent_scalar(
    "tag:yaml.org,2002:str", text, style="|" if "\n" in text else None))

_RELEASE_HEADER = """\
# {name}: concept-check questions. Generated by `deepgrade release` from the course's quiz; do
# not edit. Write your answers in answers.yml; `pytest assignments/{name} -m quiz` checks them.
# A `check` is a short salted hash of the accepted answer, so the local test can tell right from
# wrong without holding the answer; `answered` means the question has too few plausible answers
# for any such check to stay secret, and is checked only when graded.
"""


LOCAL_TEST_FILE = '''\
"""Checks your answers.yml with the checks in quiz.yml, without the answers: pytest -m quiz.

Generated by `deepgrade release`; do not edit. A question whose check is `answered` is shown as
skipped once it is answered and well formed: it is checked only when graded.
"""
from pathlib import Path

import pytest
import yaml

from autograder.quiz import local_check

HERE = Path(__file__).parent
IDS = [item["id"] for item in yaml.safe_load((HERE / "quiz.yml").read_text(encoding="utf-8"))["questions"]]


@pytest.mark.parametrize("qid", IDS)
def test_quiz_answer(qid):
    if local_check(HERE / "quiz.yml", HERE / "answers.yml", qid) == "answered":
        pytest.skip(f"{qid} is answered; it is checked only when graded")
'''


def release_files(assignment: str, quiz: Quiz) -> dict[str, bytes]:
    """quiz.yml (questions and checks), answers.yml (blank) and test_quiz.py (the local check)
    of the release."""
    data = release_quiz(assignment, quiz)
    quiz_yml = _RELEASE_HEADER.format(name=assignment) + yaml.dump(
        data, Dumper=_BlockDumper, sort_keys=False, allow_unicode=True, width=100)
    lines = [f"# {assignment}: your answers to the concept checks (quiz.yml has the same questions).",
             "# Write each answer after its colon. Submit this file with your code; a question left",
             "# blank scores 0. Check locally with: pytest assignments/" + assignment + " -m quiz", ""]
    for q in quiz.questions:
        lines.append(f"# {q.id} ({q.points:g} points)")
        lines += [f"#   {line}".rstrip() for line in q.prompt.strip().splitlines()]
        lines += [f"#     {k}) {o.text}" for k, o in q.options.items()]
        lines.append(f"#   Answer with {q.how_to_answer()}.")
        lines.append(f"{q.id}:")
        lines.append("")
    return {QUIZ_NAME: quiz_yml.encode("utf-8"), ANSWERS_NAME: "\n".join(lines).encode("utf-8"),
            "test_quiz.py": LOCAL_TEST_FILE.encode("utf-8")}


# --- the local check (student side) -------------------------------------------------------------

def local_check(released: Path | str, answers: Path | str, qid: str) -> str:
    """Check one answer against the released quiz.yml. Returns 'right', or 'answered' for a
    question without a check; raises AssertionError with the hint for a wrong or malformed one
    and AnswersError for an unreadable answers.yml."""
    data = yaml.safe_load(Path(released).read_text(encoding="utf-8"))
    item = next(i for i in data["questions"] if i["id"] == qid)
    q = _released_question(item)
    raw = read_answers(answers).get(qid)
    if _blank(raw):
        raise AssertionError(f"{qid}: not answered yet (expected {q.how_to_answer()})")
    try:
        given = canonical_answer(q, raw)
    except _Malformed as exc:
        raise AssertionError(f"{qid}: {exc}") from None
    check = item["check"]
    if check == "answered":
        return "answered"
    if check_value(check["salt"], qid, given, check["bits"]) != int(check["hash"], 16):
        hint = f" Hint: {q.hint}" if q.hint else ""
        raise AssertionError(f"{qid}: not right (your answer, as checked: {given}).{hint}")
    return "right"


def _released_question(item: dict) -> Question:
    """A Question good enough to parse answers, from a released item (no answer in it)."""
    kind = item["kind"]
    options = {k: {"text": v} for k, v in (item.get("options") or {}).items()}
    placeholder: Answer = {"choice": "a", "numeric": 0, "exact": "x"}[kind]
    tolerance = {"abs": 1.0} if kind == "numeric" else None
    return Question.model_construct(
        id=item["id"], kind=kind, prompt=item["prompt"], points=item["points"], part="quiz",
        options={k: Option(**v) for k, v in options.items()}, multiple=item.get("multiple", False),
        answer=placeholder, precision=Precision(**item["precision"]) if "precision" in item else None,
        tolerance=Tolerance(**tolerance) if tolerance else None, hint=item.get("hint", ""))


# --- what verify proves -------------------------------------------------------------------------

def released_checks(files: dict[str, bytes]) -> dict[str, object]:
    """question id -> its check in a release's quiz.yml ('answered' or a dict); {} if none."""
    if QUIZ_NAME not in files:
        return {}
    return {i["id"]: i.get("check") for i in yaml.safe_load(files[QUIZ_NAME])["questions"]}


def find_quiz_leaks(assignment: str, quiz: Quiz, files: dict[str, bytes], where: str) -> list[str]:
    """Problems with the released files of one assignment: a file that holds an accepted answer
    in plain text (a number in any spelling, a shape in any bracket style), or a released check
    that the dictionary inverts (fewer than MIN_CANDIDATES matches, or fewer than
    MIN_CHECK_BITS bits, or one on a question whose dictionary is too small for any)."""
    problems = []
    released: dict = {}
    if QUIZ_NAME in files:
        try:
            released = {i["id"]: i for i in yaml.safe_load(files[QUIZ_NAME])["questions"]}
        except Exception as exc:  # noqa: BLE001 - any broken release is a problem to report
            problems.append(f"{where}/{QUIZ_NAME}: unreadable ({exc})")
    texts = {}
    for rel, data in files.items():
        try:
            texts[rel] = data.decode("utf-8")
        except UnicodeDecodeError:
            continue
    for q in quiz.questions:
        for rel, text in texts.items():
            hit = _plain_answer_in(q, text)
            if hit:
                problems.append(f"{where}/{rel}: holds the answer of quiz question {q.id} in plain text ({hit})")
        item = released.get(q.id)
        if item is None:
            if QUIZ_NAME in files:
                problems.append(f"{where}/{QUIZ_NAME}: question {q.id} is missing")
            continue
        if any(k in item for k in ("answer", "feedback", "tolerance")) or any(
                isinstance(v, dict) for v in (item.get("options") or {}).values()):
            problems.append(f"{where}/{QUIZ_NAME}: question {q.id} carries its answer, tolerance or feedback")
        check = item.get("check")
        if check == "answered":
            continue
        try:
            bits, value, s = int(check["bits"]), int(check["hash"], 16), str(check["salt"])
        except (TypeError, KeyError, ValueError):
            problems.append(f"{where}/{QUIZ_NAME}: question {q.id}: a check that is neither 'answered' nor "
                            "{salt, bits, hash}")
            continue
        words = dictionary(q)
        digests = _digests(s, q.id, words)
        matches = int(np.count_nonzero((digests >> np.uint64(64 - bits)) == np.uint64(value))) if 0 < bits <= 64 else 0
        if bits < MIN_CHECK_BITS or matches < MIN_CANDIDATES:
            problems.append(f"{where}/{QUIZ_NAME}: the check of question {q.id} ({bits} bits) leaves {matches} of "
                            f"{len(words)} plausible answers (at least {MIN_CANDIDATES} must remain, with at "
                            f"least {MIN_CHECK_BITS} bits): it nearly gives the answer away")
    return problems


def _plain_answer_in(q: Question, text: str) -> str | None:
    """How a file spells q's answer, if it does: numbers are compared as rounded values in
    every number the text holds, texts after normalization of each line. Multiple choice
    letters are too short to search for; their release is checked by the dictionary."""
    if q.kind == "numeric":
        target = rounded(q.answer, q.precision)
        if len(target.normalize().as_tuple().digits) < MIN_SEARCHED_DIGITS:
            return None
        for m in re.finditer(r"(?<![\w.])-?\d[\d_,]*\.?\d*(?:[eE][-+]?\d+)?", text):
            try:
                v = parse_number(m.group().rstrip(","), q)
            except _Malformed:
                continue
            if v != 0 and rounded(v, q.precision) == target:
                return m.group()
        return None
    if q.kind == "exact":
        norm = {normalize_text(line.split("#", 1)[0].split(":", 1)[-1]) for line in text.splitlines()}
        norm |= {normalize_text(m) for m in re.findall(r"[\(\[][^()\[\]\n]{1,60}[\)\]]", text)}
        found = sorted(a for a in set(q.accepted) & norm if len(re.findall(r"\w+", a)) >= 2)
        return found[0] if found else None
    return None

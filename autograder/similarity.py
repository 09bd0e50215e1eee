"""Similarity screening: which pairs of submissions share unusually much code.

`deepgrade similar SUBMISSIONS -a hw1` reads the graded Python files of every student of
SUBMISSIONS (the folder `grade-batch` graded: one folder or .zip per student; grading keeps no
copy of the source), and compares every pair. The score is evidence for a human to review, never a verdict:
two students may share code for good reasons (a study group the course allows, code from the
handout), and a high score says only where to look.

The fingerprints are those of `copydetect` (MOSS-style winnowing): each file is tokenized with
pygments and normalized (every variable name becomes V, every function name F, every string S,
comments and whitespace dropped), so renaming variables or rewording comments changes nothing;
then every run of K characters of the normalized code is hashed. Two kinds of shared code are
not evidence and are removed before comparing:

- boilerplate: the released stub (assignments/hwN), which every student starts from;
- common code: a passage found in more than COMMON_FRACTION of the submissions (at least
  COMMON_MIN), as MOSS's -m option does: what many wrote alike is the obvious way to write it.

A pair's score is the larger of its two similarities: the fraction of one student's own code
(stub and common code excluded) that is found in the other's. Every pair is counted at once
with a sparse product of the fingerprint sets; the exact copydetect comparison, with the
matching regions, is made for the best candidates only.

THRESHOLD, how it was chosen: on hw1, two independently written correct solutions of the same
four functions (the reference's and the catalog's whole-function variants) score 0.06; the
same code with every local name renamed and the comments reworded scores 1.0; a student who
copied two of the four functions (renamed) and wrote the other two scores 0.52
(tests/test_similarity.py builds these pairs). Between students who share nothing (generated
programs of their own, tests/synthetic_class.py) the highest score among 30 was 0.25. A pair is
flagged from 0.4 (above what chance gave, below what copying half of one's code gives) when
the two also share at least MIN_OVERLAP normalized characters, so that a few lines of one's
own cannot make a pair.
"""
from __future__ import annotations

import math
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from autograder.config import AssignmentConfig

K = 25  # copydetect's noise threshold: matches shorter than 25 normalized characters are ignored
WINDOW = 1  # copydetect's default (guarantee threshold = K): every k-gram is a fingerprint
THRESHOLD = 0.4  # see the module docstring
COMMON_FRACTION = 0.05
COMMON_MIN = 10
MAX_FILE_CHARS = 200_000  # a graded file longer than this is cut: a flood must not stall the screen
CANDIDATES = 400  # pairs given the exact comparison, best first by the fingerprint count
MIN_OVERLAP = 100  # normalized characters two files must share before a pair can be flagged
VERDICT_NOTE = ("Similarity is evidence for a human to review, not a verdict: look at the matching "
                "code and talk to the students before concluding anything.")


class SimilarityError(Exception):
    """The screen cannot run: no submissions folder, an unknown student name."""


@dataclass
class Document:
    """One student's graded Python files as one text. text: the files in grading.yml's order,
    each after a '# ---- name ----' line; missing: graded files the student did not submit."""

    student: str
    text: str
    missing: list[str] = field(default_factory=list)


@dataclass
class _Print:
    """A document's fingerprints, with the attributes copydetect.compare_files reads."""

    text: str
    filtered_code: str
    offsets: np.ndarray
    hashes: set
    hash_idx: dict
    token_coverage: float
    k: int = K


@dataclass
class Pair:
    """Two students and how much code they share. similarity: (a's fraction found in b, b's
    fraction found in a); score: the larger; overlap: shared normalized characters;
    slices: for each text, a 2 x M array of [start, end) character ranges that match."""

    a: str
    b: str
    score: float
    similarity: tuple[float, float]
    overlap: int
    slices: tuple[np.ndarray, np.ndarray]
    flagged: bool = False


@dataclass
class SimilarityReport:
    """The screen of one assignment. pairs: the best pairs, best first (every flagged pair, and
    at least `top`); documents: student -> Document; empty: students with no code of their
    own (the stub, or nothing submitted); unreadable: student -> why."""

    assignment: str
    threshold: float
    common_limit: int
    pairs: list[Pair]
    documents: dict[str, Document]
    empty: list[str]
    unreadable: dict[str, str]
    compared: int  # pairs compared
    wall_time: float = 0.0

    @property
    def flagged(self) -> list[Pair]:
        return [p for p in self.pairs if p.flagged]

    def lines(self) -> list[str]:
        """The screen for the terminal: counts, the threshold, one line per pair, the note."""
        out = [f"{self.assignment}: {len(self.documents)} submissions, {self.compared} pairs compared "
               f"({self.wall_time:.1f} s); stub and passages shared by more than {self.common_limit} "
               f"submissions excluded; flagged from {self.threshold:.2f}",
               VERDICT_NOTE]
        if self.empty:
            out.append(f"no code of their own (stub or nothing): {len(self.empty)} students, not compared")
        for name, why in sorted(self.unreadable.items()):
            out.append(f"could not read {name}: {why}")
        if not self.pairs:
            out.append("no two submissions share code beyond the stub and common code")
            return out
        out.append(f"{'score':>6}  {'a in b':>6}  {'b in a':>6}  pair")
        for p in self.pairs:
            mark = "  FLAGGED" if p.flagged else ""
            out.append(f"{p.score:6.2f}  {p.similarity[0]:6.2f}  {p.similarity[1]:6.2f}  {p.a} / {p.b}{mark}")
        return out


def code_files(assignment: AssignmentConfig) -> list[str]:
    """The graded files that are compared: the Python modules (not a quiz's answers.yml, whose
    right answers every good student shares)."""
    return [name for name in assignment.files if name.endswith(".py")]


def _joined(files: dict[str, str], assignment: AssignmentConfig) -> str:
    return "".join(f"# ---- {name} ----\n{files.get(name, '')}\n" for name in code_files(assignment))


def stub_text(assignment: AssignmentConfig) -> str:
    """The released stub of every graded file (assignments/hwN), joined as a Document's text."""
    files = {}
    for name in code_files(assignment):
        path = assignment.release_dir / name
        files[name] = path.read_text(encoding="utf-8", errors="replace") if path.is_file() else ""
    return _joined(files, assignment)


def read_documents(directory: Path, assignment: AssignmentConfig,
                   students: list[str] | None = None) -> tuple[dict[str, Document], dict[str, str]]:
    """Every student's graded files from SUBMISSIONS (a folder or .zip each), found and read
    as grading finds them (autograder.submission.collect: zips are read with care).

    Returns (student -> Document, student -> why it could not be read). students: only these."""
    from autograder.batch import BatchError, discover
    from autograder.submission import SubmissionError, collect

    try:
        found = discover(Path(directory))
    except BatchError as exc:
        raise SimilarityError(str(exc)) from None
    if students is not None:
        unknown = sorted(set(students) - {s.name for s in found})
        if unknown:
            raise SimilarityError(f"{directory}: no submission for {', '.join(unknown)}")
        found = [s for s in found if s.name in set(students)]
    docs: dict[str, Document] = {}
    unreadable: dict[str, str] = {}
    with tempfile.TemporaryDirectory(prefix="deepgrade-similar-") as tmp:
        for i, s in enumerate(found):
            dest = Path(tmp) / str(i)
            try:
                sub = collect(s.source, assignment, dest)
            except SubmissionError as exc:
                unreadable[s.name] = str(exc)
                continue
            files = {}
            for name in set(sub.found) & set(code_files(assignment)):
                with open(dest / name, encoding="utf-8", errors="replace") as fh:
                    files[name] = fh.read(MAX_FILE_CHARS)
            docs[s.name] = Document(s.name, _joined(files, assignment), list(sub.missing))
            for p in dest.iterdir():
                p.unlink()
    return docs, unreadable


def _normalize(text: str) -> tuple[str, np.ndarray]:
    """copydetect's tokenizing filter (pure, so it can run in another process)."""
    from copydetect.utils import filter_code

    return filter_code(text, "submission.py", language="python")


def _fingerprint(text: str, filtered: str, offsets: np.ndarray, boilerplate: np.ndarray) -> _Print:
    # Hashing stays in this process: copydetect hashes with Python's hash(), which differs
    # between interpreters, so fingerprints made elsewhere would not compare.
    from copydetect.utils import get_document_fingerprints, get_token_coverage

    hashes, idx = get_document_fingerprints(filtered, K, WINDOW, boilerplate)
    return _Print(text, filtered, offsets, hashes, idx, get_token_coverage(idx, K, len(filtered)))


def _drop(fp: _Print, common: set) -> None:
    from copydetect.utils import get_token_coverage

    if not common:
        return
    fp.hashes = fp.hashes - common
    fp.hash_idx = {h: i for h, i in fp.hash_idx.items() if h not in common}
    fp.token_coverage = get_token_coverage(fp.hash_idx, K, len(fp.filtered_code))


def common_limit(n: int) -> int:
    """How many submissions a passage may appear in before it counts as common code."""
    return max(COMMON_MIN, math.ceil(COMMON_FRACTION * n))


def screen(documents: dict[str, Document], stub: str, assignment: str = "", threshold: float = THRESHOLD,
           top: int = 20, jobs: int = 1, common: int | None = None) -> SimilarityReport:
    """Compare every pair of documents. stub: the released code (boilerplate). top: how many
    pairs to keep beyond the flagged ones. jobs: processes that tokenize. common: the common-code
    limit (default common_limit(n)). Returns SimilarityReport."""
    from copydetect import compare_files
    from scipy import sparse

    start = time.perf_counter()
    names = sorted(documents)
    texts = [documents[n].text for n in names]
    if jobs > 1 and len(texts) > 8:
        with ProcessPoolExecutor(max_workers=jobs) as pool:
            normalized = list(pool.map(_normalize, [stub, *texts], chunksize=8))
    else:
        normalized = [_normalize(t) for t in [stub, *texts]]
    stub_hashes = np.array(sorted(_fingerprint(stub, *normalized[0], np.array([])).hashes), dtype=np.int64)
    prints = [_fingerprint(t, f, o, stub_hashes) for t, (f, o) in zip(texts, normalized[1:])]

    limit = common if common is not None else common_limit(len(names))
    counts: dict[int, int] = {}
    for fp in prints:
        for h in fp.hashes:
            counts[h] = counts.get(h, 0) + 1
    shared = {h for h, c in counts.items() if c > limit}
    for fp in prints:
        _drop(fp, shared)
    empty = [n for n, fp in zip(names, prints) if not fp.hashes]
    live = [i for i, fp in enumerate(prints) if fp.hashes]

    # Candidates: fingerprints in common for every pair at once, M @ M.T over the live documents.
    column: dict[int, int] = {}
    rows, cols = [], []
    for r, i in enumerate(live):
        for h in prints[i].hashes:
            rows.append(r)
            cols.append(column.setdefault(h, len(column)))
    pairs: list[Pair] = []
    if len(live) >= 2:
        m = sparse.csr_matrix((np.ones(len(rows), dtype=np.int32), (rows, cols)), shape=(len(live), len(column)))
        both = sparse.triu(m @ m.T, k=1).tocoo()
        sizes = np.array([len(prints[i].hashes) for i in live], dtype=float)
        approx = both.data / np.minimum(sizes[both.row], sizes[both.col])
        order = np.argsort(-approx, kind="stable")[:max(CANDIDATES, top)]
        for j in order:
            i1, i2 = live[both.row[j]], live[both.col[j]]
            overlap, sims, slices = compare_files(prints[i1], prints[i2])
            if overlap == 0:
                continue
            sims = (float(sims[0]), float(sims[1]))
            score = max(sims)
            pairs.append(Pair(names[i1], names[i2], score, sims, int(overlap), slices,
                              flagged=score >= threshold and overlap >= MIN_OVERLAP))
    pairs.sort(key=lambda p: (-p.score, p.a, p.b))
    keep = max(top, sum(p.flagged for p in pairs))
    report = SimilarityReport(assignment, threshold, limit, pairs[:keep], documents, empty, {},
                              compared=len(names) * (len(names) - 1) // 2)
    report.wall_time = time.perf_counter() - start
    return report


def screen_folder(directory: Path, assignment: AssignmentConfig, threshold: float = THRESHOLD, top: int = 20,
                  jobs: int = 1) -> SimilarityReport:
    """read_documents + screen, with the assignment's released stub as boilerplate."""
    start = time.perf_counter()
    docs, unreadable = read_documents(directory, assignment)
    report = screen(docs, stub_text(assignment), assignment.name, threshold=threshold, top=top, jobs=jobs)
    report.unreadable = unreadable
    report.wall_time = time.perf_counter() - start
    return report


def highlighted(pair: Pair, report: SimilarityReport, context: int = 3) -> tuple[str, str]:
    """The two texts of a pair as HTML (escaped), each matching region in <mark>, with only
    `context` lines kept around the matches. Returns (html of a, html of b)."""
    from copydetect.utils import highlight_overlap

    out = []
    for name, slices in ((pair.a, pair.slices[0]), (pair.b, pair.slices[1])):
        text = report.documents[name].text
        html, _ = highlight_overlap(text, np.asarray(slices, dtype=int), "<mark>", "</mark>",
                                    truncate=context, escape_html=True)
        out.append(html)
    return out[0], out[1]


def side_by_side_html(report: SimilarityReport, pairs: int = 10) -> str:
    """A standalone HTML page of the screen: the note, the threshold, the table of pairs and
    the flagged ones (at most `pairs`) side by side. Everything from submissions is escaped."""
    from autograder.classreport import render

    return render("similarity_page.html.j2", sim=similarity_context(report, pairs))


def similarity_context(report: SimilarityReport, pairs: int = 10) -> dict[str, Any]:
    """What the templates show of a screen (plain data)."""
    from markupsafe import Markup

    shown = report.flagged[:pairs] or report.pairs[:min(pairs, 3)]
    # highlighted() escapes the code itself (markupsafe), so its HTML goes in as it is.
    return {
        "report": report,
        "note": VERDICT_NOTE,
        "shown": [{"pair": p, "html": tuple(Markup(h) for h in highlighted(p, report))} for p in shown],
    }

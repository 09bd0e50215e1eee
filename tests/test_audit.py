"""The test-suite audit: mutants, equivalence, catalogs, reports, and the line the course holds.

A toy course (tmp_path) exercises the machinery in seconds; the real assignments are audited
on every catalogued bug and on a fixed, seeded sample of their automatic mutants (the full
figures come from `deepgrade audit hwN` and benchmarks/bench_audit.py).
"""
import subprocess
import sys
from pathlib import Path

import pytest

from autograder.audit import AuditError, load_catalog, markdown, run_audit, write_report
from autograder.config import load_config
from autograder.mutants import enclosing_function, make_mutants, solution_lines

TOY_MODULE = '''"""A toy assignment."""
import numpy as np


def scale(x, k):
    """x * k + 1, elementwise."""
    ### BEGIN SOLUTION
    out = x * k + 1.0
    ### END SOLUTION
    return out


def clip_below(x, lo):
    """max(x, lo), elementwise."""
    ### BEGIN SOLUTION
    out = np.maximum(x, lo)
    ### END SOLUTION
    return out


def count_positive(x):
    """How many entries are > 0."""
    ### BEGIN SOLUTION
    n = int(np.sum(x > 0))
    ### END SOLUTION
    return n
'''

TOY_TESTS = '''import numpy as np

from autograder.gradcheck import assert_close


def test_scale_values(student):
    assert_close(student.scale(np.array([1.0, 2.0, 3.0]), 2.0), [3.0, 5.0, 7.0])


def test_clip_shape(student):
    # Deliberately weak: only the shape is checked, so a wrong clip gets through.
    assert student.clip_below(np.array([-1.0, 0.5, 2.0]), 0.0).shape == (3,)


def test_count_values(student):
    assert student.count_positive(np.array([-1.5, 0.5, 2.0])) == 2
'''

TOY_CONFIG = """
assignments:
  toy:
    title: Toy
    files: [toy.py]
    parts:
      scale: {points: 10, tests: [test_scale_*]}
      clip: {points: 10, tests: [test_clip_*]}
      count: {points: 10, tests: [test_count_*]}
"""

TOY_CATALOG = """
bugs:
  - name: scale-no-offset
    description: scale forgets the + 1
    file: toy.py
    find: "out = x * k + 1.0"
    replace: "out = x * k"
    parts: [scale]
  - name: clip-wrong-way
    description: clip_below takes the minimum
    file: toy.py
    find: "np.maximum(x, lo)"
    replace: "np.minimum(x, lo)"
    parts: [clip]
"""


def make_toy(root: Path):
    folder = root / "solutions" / "toy"
    (folder / "hidden" / "bugs").mkdir(parents=True)
    (folder / "toy.py").write_text(TOY_MODULE)
    (folder / "test_toy.py").write_text(TOY_TESTS)
    (folder / "hidden" / "bugs" / "catalog.yml").write_text(TOY_CATALOG)
    (root / "grading.yml").write_text(TOY_CONFIG)
    return load_config(root / "grading.yml").assignment("toy")


@pytest.fixture
def toy(tmp_path: Path):
    return make_toy(tmp_path)


# --- mutants ---------------------------------------------------------------------------------------

def test_mutants_only_inside_solution_blocks():
    inside = solution_lines(TOY_MODULE)
    mutants = make_mutants(TOY_MODULE, "toy.py")
    assert mutants and all(m.line in inside for m in mutants)
    assert {m.function for m in mutants} == {"scale", "clip_below", "count_positive"}
    for m in mutants:
        compile(m.source, "toy.py", "exec")
        changed = [ln for ln in m.diff.splitlines() if ln[:1] in "+-" and not ln.startswith(("+++", "---"))]
        assert len(changed) == 2, m.diff  # one line out, one line in


def test_mutant_kinds_and_text():
    by_desc = {(m.kind, m.description) for m in make_mutants(TOY_MODULE, "toy.py")}
    assert ("swap-op", "`*` -> `/`") in by_desc
    assert ("swap-op", "`+` -> `-`") in by_desc
    assert ("drop-term", "`x * k + 1.0` -> `x * k`") in by_desc
    assert ("constant", "`1.0` -> `2.0`") in by_desc
    assert ("swap-call", "`maximum(...)` -> `minimum(...)`") in by_desc
    assert ("swap-cmp", "`>` -> `>=`") in by_desc


def test_mutants_keep_precedence():
    src = "def f(a, b, c):\n    ### BEGIN SOLUTION\n    y = c / a ** 2\n    ### END SOLUTION\n    return y\n"
    pow_to_mul = [m for m in make_mutants(src, "m.py") if m.description == "`**` -> `*`"]
    assert len(pow_to_mul) == 1
    ns: dict = {}
    exec(pow_to_mul[0].source, ns)
    assert ns["f"](2.0, 0.0, 8.0) == pytest.approx(8.0 / (2.0 * 2))


def test_mutants_off_by_one_and_skip():
    src = ("def f(x, n):\n    ### BEGIN SOLUTION\n    y = x[1:n]\n    ### END SOLUTION\n    return y\n\n"
           "def g(x):\n    ### BEGIN SOLUTION\n    return x + 1\n    ### END SOLUTION\n")
    mutants = make_mutants(src, "m.py", skip_functions=("g",))
    assert {m.function for m in mutants} == {"f"}
    assert any(m.kind == "off-by-one" and "(n + 1)" in m.source for m in mutants)


def test_enclosing_function():
    assert enclosing_function(TOY_MODULE, TOY_MODULE.splitlines().index("    out = np.maximum(x, lo)") + 1) == "clip_below"
    assert enclosing_function(TOY_MODULE, 1) is None


# --- the catalog -----------------------------------------------------------------------------------

def test_catalog_errors_name_the_problem(toy):
    path = toy.hidden_dir / "bugs" / "catalog.yml"
    path.write_text("bugs:\n  - name: a\n    description: b\n    file: toy.py\n    find: 'not there'\n    replace: x\n")
    with pytest.raises(AuditError, match="occurs 0 times"):
        run_audit(toy, mutants=False, jobs=1)
    path.write_text("bugs:\n  - name: a\n    file: toy.py\n")
    with pytest.raises(AuditError, match="lacks"):
        load_catalog(toy)
    path.write_text("bugs:\n  - {name: a, description: b, file: other.py, find: x, replace: y}\n")
    with pytest.raises(AuditError, match="not a graded file"):
        load_catalog(toy)


# --- the audit, end to end on the toy ------------------------------------------------------------

@pytest.fixture(scope="module")
def toy_report(tmp_path_factory):
    return run_audit(make_toy(tmp_path_factory.mktemp("toy")), mutants=True, jobs=2)


def test_toy_audit(toy_report):
    bugs = {v.id: v for v in toy_report.bugs}
    assert bugs["scale-no-offset"].status == "caught"
    assert bugs["scale-no-offset"].caught_by == ["test_scale_values"]
    assert bugs["scale-no-offset"].part == "scale"
    assert bugs["clip-wrong-way"].status == "survived"
    assert toy_report.catalog_caught() == (1, 2)

    by_desc = {(v.function, v.description): v for v in toy_report.mutants}
    # > and >= differ only at 0, which random inputs never hit: set aside as equivalent.
    assert by_desc[("count_positive", "`>` -> `>=`")].status == "equivalent"
    # The weak clip test lets a wrong clip through: a surviving, non-equivalent mutant.
    assert by_desc[("clip_below", "`maximum(...)` -> `minimum(...)`")].status == "survived"
    swap = by_desc[("scale", "`*` -> `/`")]
    assert swap.status == "caught" and swap.caught_by == ["test_scale_values"] and swap.part == "scale"
    assert toy_report.mutation_score("scale") == 1.0
    assert toy_report.mutation_score("clip") < 1.0


def test_toy_report_markdown_and_html(toy_report, tmp_path):
    text = markdown(toy_report)
    assert "| scale | 1/1 |" in text and "| bugs caught |" in text
    assert "**not caught**" in text
    assert "## Surviving mutants" in text and "-    out = np.maximum(x, lo)" in text
    assert "`test_scale_values`" in text
    page = tmp_path / "audit.html"
    write_report(toy_report, page)
    assert page.read_text().startswith("<!doctype html>") and "&gt;" in page.read_text()


def test_cli_audit(toy, tmp_path):
    report = tmp_path / "audit.md"
    proc = subprocess.run(
        [sys.executable, "-m", "autograder", "audit", "toy", "--no-mutants", "--report", str(report),
         "--config", str(toy.root / "grading.yml")],
        capture_output=True, text=True, timeout=300,
    )
    assert proc.returncode == 1, proc.stdout + proc.stderr  # a catalogued bug got through
    assert "clip-wrong-way" in proc.stdout
    assert "catalogued bugs caught: **1/2**" in report.read_text()


# --- the course holds the line ------------------------------------------------------------------

COURSE = load_config(Path(__file__).resolve().parent.parent / "grading.yml", check_tree=False)


@pytest.mark.parametrize("name", ["hw1", "hw2", "hw3", "hw4", "hw5", "hw6"])
def test_catalog_has_ten_bugs_and_eight_variants_that_apply(name):
    a = COURSE.assignment(name)
    catalog = load_catalog(a)
    assert len(catalog.bugs) >= 10 and len(catalog.variants) >= 8
    assert not [b.name for b in catalog.bugs if not b.parts], "every bug names the parts it may cost"
    for edit in catalog.bugs + catalog.variants:
        compile(edit.apply((a.solution_dir / edit.file).read_text()), edit.file, "exec")


# Mutants drawn per assignment: enough to notice a weak part, few enough for CI (a hw5 mutant
# trains models, so it draws fewer). Every catalogued bug and variant is graded besides; the
# full mutation scores come from `deepgrade audit hwN` (benchmarks/bench_audit.py).
SAMPLE = {"hw1": 12, "hw2": 12, "hw3": 12, "hw4": 12, "hw5": 3, "hw6": 6}


@pytest.mark.parametrize("name", sorted(SAMPLE))
def test_hidden_tests_catch_the_catalog_and_the_mutants(name):
    report = run_audit(COURSE.assignment(name), mutants=True, jobs=2, sample=SAMPLE[name], seed=1)
    missed = [v.id for v in report.bugs if v.status != "caught"]
    assert not missed, f"catalogued bugs not caught: {missed}"
    # One bug costs one deduction: points only in the parts its entry names.
    leaks = {v.id: v.lost for v in report.bugs if not v.confined}
    assert not leaks, f"bugs that cost points outside their parts: {leaks}"
    # A correct function never loses a point: each variant loses exactly what it states.
    wrong = {v.id: (v.lost, v.caught_by[:3]) for v in report.variants if v.status != "exact"}
    assert not wrong, f"correct variants that lost points they should not: {wrong}"
    score = report.mutation_score()
    survivors = [f"{v.id} ({v.description})" for v in report.mutants if v.status == "survived"]
    assert score is None or score >= 0.95, f"mutation score {score:.3f}; survivors: {survivors}"


# --- blast radius and correct variants ------------------------------------------------------------

COUNT_OF_SCALED = '''

def test_count_of_scaled(student):
    # Uses scale too: a bug in scale costs this test of the count part as well.
    assert student.count_positive(student.scale(np.array([-0.5, 0.2]), 1.0)) == 2
'''

RADIUS_CATALOG = """
bugs:
  - name: scale-no-offset
    description: scale forgets the + 1 (and so breaks a count test too)
    file: toy.py
    find: "out = x * k + 1.0"
    replace: "out = x * k"
    parts: [scale]
  - name: scale-no-offset-declared
    description: the same bug, with both parts it costs named
    file: toy.py
    find: "out = x * k + 1.0"
    replace: "out = x * k"
    parts: [scale, count]
variants:
  - name: scale-loop
    description: scale with a Python loop
    file: toy.py
    function: scale
    code: |
      def scale(x, k):
          out = np.empty_like(x)
          for i in range(len(x)):
              out[i] = x[i] * k + 1.0
          return out
  - name: scale-off-stated
    description: an offset of 1.001, declared to cost the scale part
    file: toy.py
    find: "out = x * k + 1.0"
    replace: "out = x * k + 1.001"
    loses: {scale: 10}
  - name: scale-off-unstated
    description: the same, declared to cost nothing
    file: toy.py
    find: "out = x * k + 1.0"
    replace: "out = x * k + 1.001"
"""


def test_blast_radius_and_variants(tmp_path):
    a = make_toy(tmp_path)
    with open(a.solution_dir / "test_toy.py", "a", encoding="utf-8") as fh:
        fh.write(COUNT_OF_SCALED)
    (a.hidden_dir / "bugs" / "catalog.yml").write_text(RADIUS_CATALOG)
    report = run_audit(a, mutants=False, jobs=2)
    bugs = {v.id: v for v in report.bugs}
    # The count part has two tests of 5 points each; the scale part one test of 10.
    assert bugs["scale-no-offset"].lost == pytest.approx({"scale": 10.0, "count": 5.0})
    assert not bugs["scale-no-offset"].confined and bugs["scale-no-offset-declared"].confined
    assert report.bugs_confined() == (1, 2)
    variants = {v.id: v for v in report.variants}
    assert variants["scale-loop"].status == "exact" and variants["scale-loop"].lost == {}
    assert variants["scale-off-stated"].status == "exact"
    assert variants["scale-off-unstated"].status == "wrong"
    assert variants["scale-off-unstated"].caught_by == ["test_scale_values"]
    assert report.variants_exact() == (2, 3) and not report.holds
    text = markdown(report)
    assert "blast radius: **1/2**" in text and "correct variants: **2/3**" in text
    assert "| `scale-off-unstated` | the same, declared to cost nothing | nothing | scale 10 | **wrong**" in text
    assert "count 5, scale 10 **(outside its parts)**" in text


def test_catalog_parts_and_variants_are_checked(toy):
    path = toy.hidden_dir / "bugs" / "catalog.yml"
    path.write_text("bugs:\n  - {name: a, description: b, file: toy.py, find: x, replace: y, parts: [nope]}\n")
    with pytest.raises(AuditError, match="names parts that toy does not have: .'nope'."):
        load_catalog(toy)
    path.write_text("variants:\n  - {name: v, description: d, file: toy.py, function: scale}\n")
    with pytest.raises(AuditError, match="lacks .'code'."):
        load_catalog(toy)
    path.write_text("variants:\n  - {name: v, description: d, file: toy.py, function: nothere, code: 'x = 1'}\n")
    with pytest.raises(AuditError, match="no definition of 'nothere'"):
        run_audit(toy, mutants=False, jobs=1)
    path.write_text("variants:\n  - {name: v, description: d, file: toy.py, find: a, replace: b, loses: {scale: -1}}\n")
    with pytest.raises(AuditError, match="loses must map part names to positive points"):
        load_catalog(toy)


def test_audit_refuses_a_reference_that_fails_its_tests(tmp_path):
    a = make_toy(tmp_path)
    with open(a.solution_dir / "test_toy.py", "a", encoding="utf-8") as fh:
        fh.write("\n\ndef test_count_wrong(student):\n    assert student.count_positive(np.array([1.0])) == 5\n")
    with pytest.raises(AuditError, match=r"1 test\(s\) of toy fail on the reference.*test_count_wrong"):
        run_audit(a, mutants=False, jobs=1)

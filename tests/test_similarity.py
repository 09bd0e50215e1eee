"""The similarity screen (autograder/similarity.py, `deepgrade similar`).

The key pairs come from hw1's audit catalog: two independently written correct versions of the
same four functions (the reference's, and the catalog's whole-function correct variants) must
score low, and the same code with its local names renamed and its comments reworded must score
high. Everything else of each submission is the released stub, which is boilerplate.
"""
from __future__ import annotations

import ast
import re
import zipfile

import pytest
from click.testing import CliRunner

from autograder.audit import Variant, load_catalog
from autograder.cli import main
from autograder.similarity import THRESHOLD, VERDICT_NOTE, screen_folder, side_by_side_html

# The catalog's correct variants that rewrite a whole function: code written independently of
# the reference's version of that function.
WHOLE_FUNCTION_VARIANTS = ["relu-backward-loop", "affine-backward-loop", "softmax-log-sum-exp",
                           "batchnorm-graph-backward"]
RENAMES = {"x": "inputs", "dout": "upstream", "dx": "grad_in", "dw": "grad_w", "db": "grad_b", "n": "k",
           "row": "flat", "N": "batch", "C": "classes", "m": "peak", "lse": "log_norm", "one_hot": "target",
           "std": "sigma", "xmu": "centred", "dbeta": "d_shift", "dgamma": "d_scale", "dx_hat": "d_norm"}


@pytest.fixture(scope="module")
def hw1(course):
    return course.assignment("hw1")


def _pair_score(report, a, b):
    return next(p for p in report.pairs if {p.a, p.b} == {a, b})


def _solutions(hw1):
    """layers.py of three students: the stub with four functions written by the reference,
    the same four written as the catalog's variants, and the variants renamed and re-commented."""
    stub = (hw1.release_dir / "layers.py").read_text(encoding="utf-8")
    ref = (hw1.solution_dir / "layers.py").read_text(encoding="utf-8")
    tree = ast.parse(ref)
    variants = {v.name: v for v in load_catalog(hw1).variants}
    reference, variant, renamed = stub, stub, stub
    for name in WHOLE_FUNCTION_VARIANTS:
        v = variants[name]
        node = next(n for n in tree.body if getattr(n, "name", None) == v.function)
        own = Variant(name=name, description="", file="layers.py", function=v.function,
                      code=ast.get_source_segment(ref, node) + "\n")
        reference = own.apply(reference)
        variant = v.apply(variant)
        disguised = re.sub(r"\b(" + "|".join(RENAMES) + r")\b", lambda m: RENAMES[m[1]], v.code)
        disguised = re.sub(r"#.*", "# step of the computation", disguised)
        renamed = Variant(name=name, description="", file="layers.py", function=v.function,
                          code=disguised).apply(renamed)
    assert renamed != variant
    return stub, {"reference": reference, "variant": variant, "renamed": renamed}


def _write(folder, hw1, layers):
    folder.mkdir(parents=True)
    for f in hw1.files:
        if (hw1.release_dir / f).is_file():
            (folder / f).write_text((hw1.release_dir / f).read_text(encoding="utf-8"), encoding="utf-8")
    (folder / "layers.py").write_text(layers, encoding="utf-8")


def test_independent_solutions_score_low_and_a_renamed_copy_high(tmp_path, hw1):
    stub, layers = _solutions(hw1)
    for name, text in layers.items():
        _write(tmp_path / "subs" / name, hw1, text)
    _write(tmp_path / "subs" / "untouched", hw1, stub)
    report = screen_folder(tmp_path / "subs", hw1)

    independent = _pair_score(report, "reference", "variant")
    assert independent.score < 0.2 and not independent.flagged
    copy = _pair_score(report, "variant", "renamed")
    assert copy.score > 0.9 and copy.flagged
    assert report.pairs[0] is copy
    assert [p.flagged for p in report.pairs].count(True) == 1
    assert report.empty == ["untouched"]  # the stub alone is no code of one's own
    assert VERDICT_NOTE in report.lines()
    assert "# ---- layers.py ----" in report.documents["variant"].text
    assert "answers.yml" not in report.documents["variant"].text  # a quiz's answers are not code


def test_half_copied_code_scores_between(tmp_path, hw1):
    """Two of the four functions copied (renamed) and two of one's own: about half of the code."""
    stub, layers = _solutions(hw1)
    ref_funcs = [n for n in ast.parse(layers["reference"]).body if isinstance(n, ast.FunctionDef)]
    half = layers["renamed"]
    for node in ref_funcs:
        if node.name in ("softmax_loss", "batchnorm_backward"):
            half = Variant(name=node.name, description="", file="layers.py", function=node.name,
                           code=ast.get_source_segment(layers["reference"], node) + "\n").apply(half)
    _write(tmp_path / "subs" / "variant", hw1, layers["variant"])
    _write(tmp_path / "subs" / "half", hw1, half)
    pair = screen_folder(tmp_path / "subs", hw1).pairs[0]
    assert 0.4 <= pair.score < 0.9 and pair.flagged


def test_zip_submissions_and_hostile_code_are_escaped(tmp_path, hw1):
    _, layers = _solutions(hw1)
    evil = layers["variant"] + '\n\nBANNER = "</pre><script>alert(1)</script>"\n'
    _write(tmp_path / "subs" / "a", hw1, evil)
    with zipfile.ZipFile(tmp_path / "subs" / "<b>bob.zip", "w") as zf:
        zf.writestr("hw1/layers.py", evil)
    report = screen_folder(tmp_path / "subs", hw1)
    assert report.pairs[0].flagged and {report.pairs[0].a, report.pairs[0].b} == {"a", "<b>bob"}
    page = side_by_side_html(report)
    assert "<script>alert" not in page and "&lt;script&gt;alert" in page
    assert "<b>bob" not in page and "&lt;b&gt;bob" in page
    assert "<mark>" in page  # the matching regions are highlighted


def test_similar_command_prints_pairs_and_the_note(tmp_path, hw1, root):
    _, layers = _solutions(hw1)
    for name in ("variant", "renamed"):
        _write(tmp_path / "hw1" / name, hw1, layers[name])
    result = CliRunner().invoke(main, ["similar", str(tmp_path / "hw1"), "--config", str(root / "grading.yml"),
                                       "-o", str(tmp_path / "similar.html")])
    assert result.exit_code == 0, result.output
    assert "not a verdict" in result.output and "FLAGGED" in result.output
    assert f"flagged from {THRESHOLD:.2f}" in result.output
    assert (tmp_path / "similar.html").read_text(encoding="utf-8").startswith("<!DOCTYPE html>")


def test_similar_command_names_a_missing_folder(tmp_path, root):
    result = CliRunner().invoke(main, ["similar", str(tmp_path / "nope"), "-a", "hw1",
                                       "--config", str(root / "grading.yml")])
    assert result.exit_code == 2 and "nope" in result.output

"""The gradebook's readers at scale (benchmarks/bench_gradebook.py measures them): a submission's
fingerprint found with os.scandir is the one sorting rglob gave (so stamps in OUT stay valid),
and read_grade reads a results.json's score and extra_data exactly as a whole read does."""
import hashlib
import os
from pathlib import Path

import pytest

from autograder.batch import fingerprint, gradebook_csv, read_grade, read_results, summary_markdown
from autograder.reports import write_json


def fingerprint_by_rglob(source: Path) -> str:
    """The fingerprint as deepgrade first computed it (sorting Path.rglob), to compare with."""
    h = hashlib.sha256()
    for p in sorted(source.rglob("*")):
        if p.is_file() and not p.is_symlink() and "__pycache__" not in p.parts:
            h.update(p.relative_to(source).as_posix().encode() + b"\0")
            h.update(hashlib.sha256(p.read_bytes()).digest())
    return h.hexdigest()


def test_fingerprint_is_the_one_sorted_rglob_gave(tmp_path):
    sub = tmp_path / "alice"
    for rel, text in {"layers.py": "a", "fc_net.py": "b", "a/b/c.py": "c", "a/b.py": "d", "a-b.py": "e",
                      "a.b/x": "f", ".hidden": "g", "Z.py": "h", "é.py": "i", "__pycache__/x.pyc": "j",
                      "a/__pycache__/y.pyc": "k", "empty/.keep": ""}.items():
        (sub / rel).parent.mkdir(parents=True, exist_ok=True)
        (sub / rel).write_text(text)
    (sub / "link.py").symlink_to(sub / "layers.py")
    (sub / "linked-folder").symlink_to(sub / "a", target_is_directory=True)
    (sub / "nothing").mkdir()
    assert fingerprint(sub) == fingerprint_by_rglob(sub)
    before = fingerprint(sub)
    (sub / "a" / "b" / "c.py").write_text("changed")
    assert fingerprint(sub) != before and fingerprint(sub) == fingerprint_by_rglob(sub)


def results(extra: dict, tests: list[dict] | None = None) -> dict:
    """A results.json as gradescope_results makes it: score first, extra_data last."""
    return {"score": 7.5, "execution_time": 1.0, "output": "sandbox: ...", "visibility": "visible",
            "stdout_visibility": "hidden", "tests": tests if tests is not None else [
                {"name": "affine: test_x", "score": 0, "max_score": 1, "status": "failed",
                 "output": 'a "quoted" "extra_data": {"x": 1}} and \\ backslashes',
                 "extra_data": {"nodeid": "t::x", "part": "affine"}}],
            "extra_data": extra}


EXTRA = {"parts": {"affine": {"score": 7.5, "max_score": 10}}, "ignored": ['"extra_data": {}', "extra_data"],
         "batch": {"student": "alice", "fingerprint": "0" * 64, "select": None}}


@pytest.mark.parametrize("data", [
    results(EXTRA),
    results({**EXTRA, "nested": {"extra_data": {"x": 1}}}),  # the last "extra_data" key is not the top one
    results({}, tests=[]),
    {"score": 1, "extra_data": {"parts": {}}},
    {"extra_data": {"parts": {}}, "score": 2},  # another layout: read whole
    {"score": 3, "tests": [{"extra_data": {"part": "x"}}]},  # no extra_data of its own
    # Large files, whose head and tail alone are read: the extra_data within the tail, or not.
    results(EXTRA, tests=[{"name": f"t{i}", "output": "x" * 1000, "extra_data": {"i": i}} for i in range(60)]),
    results({**EXTRA, "ignored": ["f" * 100] * 400}, tests=[{"extra_data": {"i": i}} for i in range(2000)]),
    results({**EXTRA, "z": {"extra_data": 1}}, tests=[{"output": "y" * 50000}]),
])
def test_read_grade_reads_what_a_whole_read_reads(tmp_path, data):
    path = tmp_path / "results.json"
    write_json(path, data)
    whole = read_results(path)
    assert read_grade(path) == {"score": whole["score"], "extra_data": whole.get("extra_data") or {}}


@pytest.mark.parametrize("text", ["", "{", '{"score": 1, "extra_data": {"a": 1}', "[1, 2]", '{"tests": []}',
                                  '{"score": 1, "extra_data": {"a": 1}}}'])
def test_read_grade_of_an_unreadable_file_is_none(tmp_path, text):
    path = tmp_path / "results.json"
    path.write_text(text)
    assert read_grade(path) is None and read_results(path) is None
    assert read_grade(tmp_path / "absent.json") is None


def test_the_reports_are_the_same_from_what_read_grade_reads(tmp_path, course):
    hw1 = course.assignment("hw1")
    parts = {p: {"score": i / 2, "max_score": hw1.parts[p].points} for i, p in enumerate(hw1.parts)}
    states = {}
    for name, score in (("ann", 12.5), ("=bob", 3.0)):
        write_json(tmp_path / f"{name}.json", results({"parts": parts, "batch": {"student": name}}) | {"score": score})
    full = {n: ("graded", read_results(tmp_path / f"{n}.json")) for n in ("ann", "=bob")}
    states = {n: ("graded", read_grade(tmp_path / f"{n}.json")) for n in ("ann", "=bob")}
    full["cy"] = states["cy"] = ("pending", None)
    assert gradebook_csv(hw1, states) == gradebook_csv(hw1, full)
    assert summary_markdown(hw1, states) == summary_markdown(hw1, full)
    assert "'=bob" in gradebook_csv(hw1, states)  # still made safe for a spreadsheet
    assert os.path.getsize(tmp_path / "ann.json") > 0

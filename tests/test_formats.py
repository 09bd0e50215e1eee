"""JUnit XML and Markdown reports, `deepgrade grade --junit/--markdown`, and `deepgrade merge`."""
import copy
import json
import xml.etree.ElementTree as ET
from pathlib import Path

import jsonschema
import pytest
from click.testing import CliRunner

from autograder.cli import main
from autograder.formats import HIDDEN_OUTPUT, junit_xml, markdown_summary, write_text_atomic
from autograder.merge import MergeError, merge_results

SCHEMA = json.loads((Path(__file__).parent / "gradescope_results.schema.json").read_text())


def _test(name, part, status, score, max_score, output="", visibility="visible", gpu=False, nodeid=None):
    deferred = status == "deferred"
    return {
        "name": name, "score": score, "max_score": max_score,
        "status": "passed" if status == "passed" else "failed",
        "output": output, "visibility": visibility,
        "tags": [part] + (["gpu"] if gpu else []) + (["deferred"] if deferred else []),
        "extra_data": {"nodeid": nodeid or f"test_x.py::{name}", "part": part,
                       "deepgrade_status": status, "duration": 0.01},
    }


@pytest.fixture
def results():
    """A results.json as `deepgrade grade` writes it on a CPU runner: a part that passes, one
    with a visible and a hidden failure, and a GPU part deferred."""
    tests = [
        _test("test_affine_forward", "affine", "passed", 5, 5),
        _test("test_affine_backward", "affine", "passed", 5, 5),
        _test("test_relu_forward", "activations", "failed", 0, 5,
              output="AssertionError: out | shapes (2, 3) and (2, 3)\nworst relative error 0.5 at (0, 1)"),
        _test("test_relu_hidden (hidden)", "activations", "failed", 0, 5,
              output="SECRET hidden detail", visibility="after_published"),
        _test("test_gpu_amp", "gpu_part", "deferred", 0, 10, gpu=True,
              output="deferred to a GPU runner: this part is graded where CUDA is available"),
    ]
    return {
        "score": 10.0, "execution_time": 1.5,
        "output": "Demo (hw9): 10.00 / 30\n  affine: 10.00 / 10\n  activations: 0.00 / 10\n"
                  "  gpu_part: 0.00 / 10\nnote: something the grader wants said",
        "visibility": "visible", "stdout_visibility": "hidden", "tests": tests,
        "extra_data": {"assignment": "hw9", "max_score": 30,
                       "parts": {"affine": {"score": 10, "max_score": 10, "runner": "cpu"},
                                 "activations": {"score": 0, "max_score": 10, "runner": "cpu"},
                                 "gpu_part": {"score": 0, "max_score": 10, "runner": "gpu"}}},
    }


def test_junit_counts_failures_and_deferred_tests(results):
    root = ET.fromstring(junit_xml(results))
    suite = root.find("testsuite")
    assert suite.get("name") == "deepgrade.hw9"
    assert (suite.get("tests"), suite.get("failures"), suite.get("skipped")) == ("5", "2", "1")
    cases = {c.get("name"): c for c in suite.iter("testcase")}
    assert cases["test_affine_forward"].get("classname") == "hw9.affine"
    failure = cases["test_relu_forward"].find("failure")
    assert failure.get("message") == "worst relative error 0.5 at (0, 1)"
    assert "shapes (2, 3)" in failure.text
    assert cases["test_gpu_amp"].find("skipped") is not None
    props = {p.get("name"): p.get("value") for p in suite.iter("property")}
    assert props == {"score": "10", "max_score": "30"}


def test_reports_never_show_a_hidden_tests_output(results):
    for text in (junit_xml(results), markdown_summary(results)):
        assert "SECRET" not in text
        assert HIDDEN_OUTPUT in text


def test_markdown_summary_has_the_parts_and_the_failures(results):
    md = markdown_summary(results)
    assert md.startswith("## Demo (hw9)\n")
    assert "**Score: 10.00 / 30**" in md
    assert "| affine | 2/2 | 10.00 / 10 |" in md
    assert "| gpu_part | 0/1 (1 deferred to GPU) | 0.00 / 10 |" in md
    # The '|' in a message must not break the table or the list.
    assert "- `test_relu_forward`: worst relative error 0.5 at (0, 1)" in md
    assert "1 hidden test(s) in part `activations`" in md
    assert "1 GPU test(s) deferred" in md
    assert "note: something the grader wants said" in md


def test_atomic_write_leaves_no_temporary_file(tmp_path):
    target = tmp_path / "deep" / "summary.md"
    write_text_atomic(target, "one")
    write_text_atomic(target, "two")
    assert target.read_text() == "two"
    assert [p.name for p in target.parent.iterdir()] == ["summary.md"]


def test_merge_fills_the_deferred_gpu_tests(results):
    gpu = copy.deepcopy(results)
    gpu["tests"] = [_test("test_gpu_amp", "gpu_part", "passed", 10, 10, gpu=True)]
    gpu["execution_time"] = 2.0
    before = copy.deepcopy(results)
    merged = merge_results(results, gpu)
    assert results == before  # the inputs are left alone
    assert merged["score"] == 20
    assert merged["extra_data"]["parts"]["gpu_part"]["score"] == 10
    assert merged["extra_data"]["merged"] == {"gpu_tests_filled": 1, "still_deferred": 0}
    amp = next(t for t in merged["tests"] if t["name"] == "test_gpu_amp")
    assert amp["status"] == "passed" and amp["extra_data"]["deepgrade_status"] == "passed"
    assert merged["output"].splitlines()[0] == "Demo (hw9): 20.00 / 30"
    assert "  gpu_part: 10.00 / 10" in merged["output"]
    assert merged["execution_time"] == 3.5
    jsonschema.validate(merged, SCHEMA)


def test_merge_keeps_a_test_the_gpu_run_did_not_grade_deferred(results):
    gpu = copy.deepcopy(results)
    gpu["tests"] = []
    merged = merge_results(results, gpu)
    assert merged["score"] == 10
    assert merged["extra_data"]["merged"]["still_deferred"] == 1
    assert "1 GPU test(s) were not graded on a GPU" in merged["output"]


def test_merge_refuses_results_of_another_assignment(results):
    other = copy.deepcopy(results)
    other["extra_data"]["assignment"] = "hw1"
    with pytest.raises(MergeError, match="hw9 and the GPU result for hw1"):
        merge_results(results, other)


def test_merge_command_writes_results_junit_and_markdown(results, tmp_path):
    gpu = copy.deepcopy(results)
    gpu["tests"] = [_test("test_gpu_amp", "gpu_part", "passed", 10, 10, gpu=True)]
    (tmp_path / "cpu.json").write_text(json.dumps(results))
    (tmp_path / "gpu.json").write_text(json.dumps(gpu))
    out = tmp_path / "results.json"
    res = CliRunner().invoke(main, ["merge", str(tmp_path / "cpu.json"), str(tmp_path / "gpu.json"), "-o", str(out),
                                    "--junit", str(tmp_path / "r.xml"), "--markdown", str(tmp_path / "r.md")])
    assert res.exit_code == 0, res.output
    assert json.loads(out.read_text())["score"] == 20
    assert ET.parse(tmp_path / "r.xml").getroot().find("testsuite").get("failures") == "2"
    assert "**Score: 20.00 / 30**" in (tmp_path / "r.md").read_text()


def test_merge_command_names_an_unreadable_file(tmp_path, results):
    (tmp_path / "cpu.json").write_text(json.dumps(results))
    (tmp_path / "gpu.json").write_text("{not json")
    res = CliRunner().invoke(main, ["merge", str(tmp_path / "cpu.json"), str(tmp_path / "gpu.json"), "-o", str(tmp_path / "o.json")])
    assert res.exit_code == 2
    assert "gpu.json: cannot read a results.json" in res.output


def test_grade_writes_junit_and_markdown(root, tmp_path):
    res = CliRunner().invoke(main, [
        "grade", str(root / "solutions" / "hw1"), "-a", "hw1", "-m", "affine", "-q",
        "--config", str(root / "grading.yml"), "-o", str(tmp_path / "r.json"),
        "--junit", str(tmp_path / "r.xml"), "--markdown", str(tmp_path / "r.md"),
    ])
    assert res.exit_code == 0, res.output
    suite = ET.parse(tmp_path / "r.xml").getroot().find("testsuite")
    assert int(suite.get("tests")) > 0 and suite.get("failures") == "0"
    assert "| affine |" in (tmp_path / "r.md").read_text()

"""Reports for CI, made from a results.json document: JUnit XML and a Markdown summary.

Both are built from the Gradescope results dict (not from a Scorecard), so that a merged
CPU + GPU result gets the same reports as a single grade. A test whose visibility is not
"visible" (the hidden tests, until grades are published) shows its name, part and verdict but
never its output: these reports end up on pages that students read.
"""
from __future__ import annotations

import os
import re
import tempfile
from collections import Counter
from pathlib import Path
from typing import Any

HIDDEN_OUTPUT = "details of hidden tests are shown when grades are published"


def write_bytes_atomic(path: Path | str, data: bytes) -> None:
    """Write a file atomically: a reader sees the old file or the new one, never half of one."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def write_text_atomic(path: Path | str, text: str) -> None:
    write_bytes_atomic(path, text.encode("utf-8"))


def _status(test: dict[str, Any]) -> str:
    """passed | failed | deferred (a GPU test a CPU runner left for a GPU runner)."""
    return (test.get("extra_data") or {}).get("deepgrade_status") or test.get("status", "failed")


def _part(test: dict[str, Any]) -> str:
    extra = test.get("extra_data") or {}
    if extra.get("part"):
        return extra["part"]
    tags = test.get("tags") or []
    return tags[0] if tags else "ungraded"


def _shown_output(test: dict[str, Any]) -> str:
    if test.get("visibility", "visible") != "visible" and _status(test) == "failed":
        return HIDDEN_OUTPUT
    return test.get("output", "")


def _first_line(text: str, limit: int = 200) -> str:
    lines = [ln.strip() for ln in text.strip().splitlines() if ln.strip()]
    line = lines[-1] if lines else "failed"  # pytest-style messages end with the reason
    return line if len(line) <= limit else line[: limit - 3] + "..."


def junit_xml(results: dict[str, Any]) -> str:
    """The JUnit XML document (a string) for a results.json dict: one testsuite for the
    assignment, one testcase per graded test (classname ``<assignment>.<part>``). Failed tests
    carry a <failure>, deferred GPU tests a <skipped>; the total score is a suite property."""
    from junitparser import Failure, JUnitXml, Skipped, TestCase, TestSuite  # only CI needs it

    extra = results.get("extra_data") or {}
    name = extra.get("assignment", "assignment")
    suite = TestSuite(f"deepgrade.{name}")
    suite.add_property("score", f"{results.get('score', 0):g}")
    if "max_score" in extra:
        suite.add_property("max_score", f"{extra['max_score']:g}")
    for test in results.get("tests", []):
        case = TestCase(test["name"], classname=f"{name}.{_part(test)}",
                        time=float((test.get("extra_data") or {}).get("duration", 0.0)))
        status = _status(test)
        output = _shown_output(test)
        if status == "deferred":
            case.result = [Skipped(output or "deferred to a GPU runner")]
        elif status != "passed":
            failure = Failure(_first_line(output), "failed")
            failure.text = output
            case.result = [failure]
        suite.add_testcase(case)
    suite.time = float(results.get("execution_time", 0.0))
    suite.update_statistics()
    xml = JUnitXml("deepgrade")
    xml.add_testsuite(suite)
    xml.update_statistics()
    text = xml.tostring()
    return text.decode("utf-8") if isinstance(text, bytes) else text


def _cell(text: str) -> str:
    """Text made safe for one Markdown table cell."""
    return text.replace("\\", "\\\\").replace("|", "\\|").replace("\n", " ")


def markdown_summary(results: dict[str, Any]) -> str:
    """A Markdown summary of a results.json dict for a CI job page: the total, a table of
    parts (tests passed, score), the failed tests with the last line of their reason (hidden
    ones counted per part, not shown), the deferred GPU tests, and the grader's notes."""
    extra = results.get("extra_data") or {}
    name = extra.get("assignment", "assignment")
    out_lines = (results.get("output") or "").splitlines()
    # The first line of the grader's output is "Title (hwN): score / max"; the score has a line
    # of its own below, so the heading keeps only the title.
    heading = re.sub(r":\s*[-\d.]+\s*/\s*[-\d.]+\s*$", "", out_lines[0]) if out_lines else name
    parts: dict[str, dict] = extra.get("parts") or {}
    tests = results.get("tests", [])
    total_by_part = Counter(_part(t) for t in tests)
    passed_by_part = Counter(_part(t) for t in tests if _status(t) == "passed")
    deferred_by_part = Counter(_part(t) for t in tests if _status(t) == "deferred")

    md = [f"## {heading}", ""]
    max_score = extra.get("max_score")
    total = f"{results.get('score', 0):.2f}" + (f" / {max_score:g}" if max_score is not None else "")
    md += [f"**Score: {total}**", ""]
    if parts:
        md += ["| part | tests passed | score |", "|---|---:|---:|"]
        for part, info in parts.items():
            note = f" ({deferred_by_part[part]} deferred to GPU)" if deferred_by_part[part] else ""
            md.append(f"| {_cell(part)} | {passed_by_part[part]}/{total_by_part[part]}{note} "
                      f"| {info.get('score', 0):.2f} / {info.get('max_score', 0):g} |")
        md += [f"| **total** | | **{total}** |", ""]

    failed = [t for t in tests if _status(t) == "failed"]
    shown = [t for t in failed if t.get("visibility", "visible") == "visible"]
    hidden = Counter(_part(t) for t in failed if t.get("visibility", "visible") != "visible")
    if failed:
        md += [f"### Failed tests ({len(failed)})", ""]
        md += [f"- `{t['name']}`: {_cell(_first_line(t.get('output', '')))}" for t in shown]
        md += [f"- {n} hidden test(s) in part `{p}` ({HIDDEN_OUTPUT})" for p, n in sorted(hidden.items())]
        md.append("")
    deferred = sum(deferred_by_part.values())
    if deferred:
        md += [f"{deferred} GPU test(s) deferred to a GPU runner; they score 0 until merged "
               "with `deepgrade merge`.", ""]
    notes = out_lines[1 + len(parts):] if parts else out_lines[1:]
    if notes:
        md += ["<details><summary>Grader notes</summary>", "", "```text", *notes, "```", "",
               "</details>", ""]
    return "\n".join(md)


def write_junit(path: Path | str, results: dict[str, Any]) -> None:
    write_text_atomic(path, junit_xml(results))


def write_markdown(path: Path | str, results: dict[str, Any]) -> None:
    write_text_atomic(path, markdown_summary(results))

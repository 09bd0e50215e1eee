"""Reports of a graded submission: Gradescope's results.json and a terminal table.

results.json follows Gradescope's format: top-level ``score``, ``execution_time``, ``output``
and ``tests``; each test has ``name``, ``score``, ``max_score``, ``status`` ("passed" or
"failed"), ``output`` and ``visibility``. deepgrade's own details (parts, deferred GPU tests)
go in ``extra_data``, which Gradescope keeps and ignores.
"""
from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

from autograder.scoring import Scorecard, ScoredTest

OUTPUT_LIMIT = 8000  # characters of one test's output: a flood must not bloat the results


def _clip(text: str, limit: int = OUTPUT_LIMIT) -> str:
    if len(text) <= limit:
        return text
    return text[: limit // 2] + f"\n... [{len(text) - limit} characters cut] ...\n" + text[-limit // 2 :]


def _round(x: float) -> float:
    return round(x, 4)


def result_entry(t: ScoredTest, scorecard: Scorecard) -> dict[str, Any]:
    a = scorecard.assignment
    o = t.outcome
    if t.status == "deferred":
        output = ("deferred to a GPU runner: this part is graded where CUDA is available" if o.gpu
                  else "deferred to a CPU runner: this GPU run (--runner gpu) grades the GPU parts only")
    elif t.status == "passed":
        output = ""
    else:
        output = o.message or "failed"
    entry = {
        "name": f"{t.part}: {o.name}" + (" (hidden)" if o.hidden else ""),
        "score": _round(t.score),
        "max_score": _round(t.max_score),
        "status": "passed" if t.passed else "failed",
        "output": _clip(output),
        "visibility": a.hidden_visibility if o.hidden else a.visible_visibility,
        "tags": [t.part] + (["gpu"] if o.gpu else []) + (["deferred"] if t.status == "deferred" else []),
        "extra_data": {"nodeid": o.nodeid, "part": t.part, "deepgrade_status": t.status,
                       "duration": round(o.duration, 4)},
    }
    return entry


def gradescope_results(
    scorecard: Scorecard, execution_time: float, notes: list[str] | None = None, extra: dict | None = None
) -> dict[str, Any]:
    """The results.json document (a dict) for a scorecard."""
    a = scorecard.assignment
    lines = [f"{a.title} ({a.name}): {scorecard.score:.2f} / {scorecard.max_score:g}"]
    for p in scorecard.parts:
        lines.append(f"  {p.name}: {p.score:.2f} / {p.points:g}")
    lines += list(notes or [])
    return {
        "score": _round(scorecard.score),
        "execution_time": round(execution_time, 3),
        "output": "\n".join(lines),
        "visibility": "visible",
        "stdout_visibility": "hidden",
        "tests": [result_entry(t, scorecard) for t in scorecard.tests],
        "extra_data": {
            "assignment": a.name,
            "max_score": _round(scorecard.max_score),
            "parts": {
                p.name: {"score": _round(p.score), "max_score": p.points, "runner": p.runner}
                for p in scorecard.parts
            },
            **(extra or {}),
        },
    }


def write_json(path: Path | str, data: Any) -> None:
    """Write JSON atomically: a reader sees the old file or the new one, never half of one."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            json.dump(data, fh, indent=2)
            fh.write("\n")
            fh.flush()
            os.fsync(fh.fileno())
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _headline(message: str) -> str:
    """The exception line of a failure message (after any traceback frames), e.g.
    'AssertionError: dx (shape (2, 3)) is wrong: ...'."""
    lines = message.strip().splitlines()
    for line in lines:
        if line and not line[0].isspace():
            return line
    return lines[-1].strip() if lines else "failed"


def print_table(scorecard: Scorecard, console: Console | None = None, failures: bool = True) -> None:
    """A score table per part, then the failing tests with the first line of their reason."""
    console = console or Console()
    a = scorecard.assignment
    table = Table(title=f"{a.name}: {a.title}")
    table.add_column("part")
    table.add_column("tests passed", justify="right")
    table.add_column("score", justify="right")
    for p in scorecard.parts:
        passed = sum(t.passed for t in p.tests)
        deferred = sum(t.status == "deferred" for t in p.tests)
        note = f" ({deferred} deferred to GPU)" if deferred else ""
        table.add_row(p.name, f"{passed}/{len(p.tests)}{note}", f"{p.score:.2f} / {p.points:g}")
    table.add_row("total", "", f"{scorecard.score:.2f} / {scorecard.max_score:g}", style="bold")
    console.print(table)
    if failures:
        for t in scorecard.tests:
            if t.status == "failed":
                first = _headline(t.outcome.message)
                console.print(f"[red]FAILED[/red] {t.outcome.nodeid}: {first[:200]}", highlight=False)

"""Reports of a graded submission: Gradescope's results.json and a terminal table.

results.json follows Gradescope's format: top-level ``score``, ``execution_time``, ``output``
and ``tests``; each test has ``name``, ``score``, ``max_score``, ``status`` ("passed" or
"failed"), ``output`` and ``visibility``. deepgrade's own details (parts, deferred GPU tests)
go in ``extra_data``, which Gradescope keeps and ignores.
"""
from __future__ import annotations

import json
import os
import re
import tempfile
import textwrap
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.markup import escape
from rich.table import Table

from autograder.scoring import Scorecard, ScoredTest

OUTPUT_LIMIT = 8000  # characters of one test's output: a flood must not bloat the results
HEADLINE_LIMIT = 300  # characters of a failure's one-line reason in the terminal table


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
    if o.warnings and t.status != "deferred":
        # A rule broken here is graded by its own tests; here it is a line, not a deduction.
        output = "\n".join([f"warning: {w}" for w in o.warnings] + ([output] if output else []))
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
    """The results.json document (a dict) for a scorecard. Its top-level output: the total,
    each part, a line per module that could not be imported (naming the error and its line),
    then the notes (missing files, ignored files, the sandbox)."""
    a = scorecard.assignment
    lines = [f"{a.title} ({a.name}): {scorecard.score:.2f} / {scorecard.max_score:g}"]
    for p in scorecard.parts:
        lines.append(f"  {p.name}: {p.score:.2f} / {p.points:g}")
    lines += [f"{problem} (every test that needs it scores 0)" for problem in import_problems(scorecard)]
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


# "layers.py raised SyntaxError while being imported:", as the loader and the worker say it.
_IMPORT_FAILED = re.compile(r"^(?P<file>[\w.-]+\.py) raised (?P<exc>[\w.]+) while being imported:$", re.M)
_QUALIFIED = re.compile(r"^(?:[A-Za-z_]\w*\.)+(?=[A-Za-z_]\w*(?::|$))")


def _import_problems(message: str) -> list[str]:
    """One line per module that a failure message says could not be imported, e.g.
    'optim.py could not be imported: SyntaxError at line 12: invalid syntax'."""
    found = list(_IMPORT_FAILED.finditer(message))
    out = []
    for m, after in zip(found, found[1:] + [None]):
        block = message[m.end(): after.start() if after else len(message)].splitlines()
        exc = m["exc"].rsplit(".", 1)[-1]
        detail = next((ln[len(exc) + 1:].strip() for ln in reversed(block) if ln.startswith(exc + ":")), "")
        # The last frame in the module itself is where the import stopped.
        at = [n for ln in block for n in re.findall(rf'^\s*File "(?:[^"]*/)?{re.escape(m["file"])}", line (\d+)', ln)]
        where = f" at line {at[-1]}" if at else ""
        out.append(f"{m['file']} could not be imported: {exc}{where}" + (f": {detail}" if detail else ""))
    return out


def import_problems(scorecard: Scorecard) -> list[str]:
    """The modules of the submission that could not be imported (a syntax error, an error on
    import), each once, with the error and its line, in the order the failures name them."""
    seen: dict[str, str] = {}
    for t in scorecard.tests:
        if t.status == "failed":
            for line in _import_problems(t.outcome.message):
                seen.setdefault(line.split(" ", 1)[0], line)
    return list(seen.values())


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


def headline(message: str) -> str:
    """The one line that says why a test failed: the module that could not be imported, or
    the exception's line (after any traceback frames), its type without the module path, e.g.
    'GradientError: dx (shape (2, 3)) is wrong: worst relative error 3.1e-01 at index (1, 2)'.
    A line that ends with ':' is followed by the innermost exception, when that says more."""
    problems = _import_problems(message)
    if problems:
        return problems[0]
    lines = [ln for ln in message.splitlines() if ln.strip()]
    own = [ln for ln in lines if not ln[0].isspace() and not ln.startswith("Traceback (most recent call last)")]
    if not own:
        return lines[-1].strip() if lines else "failed"
    first = _QUALIFIED.sub("", own[0])
    if first.endswith(":") and len(own) > 1:
        inner = _QUALIFIED.sub("", own[-1])
        first = first[:-1] + (f": {inner}" if ": " in inner else "")
    return first


def hint(message: str) -> str | None:
    """The 'hint: ...' line of a failure message (the gradient checks' diagnosis), if any."""
    return next((ln.strip() for ln in message.splitlines() if ln.strip().startswith("hint:")), None)


def _shorten(text: str, limit: int = HEADLINE_LIMIT) -> str:
    # At a word boundary: a number cut in half reads as another number.
    return textwrap.shorten(text, width=limit, placeholder=" ...") if len(text) > limit else text


def print_table(scorecard: Scorecard, console: Console | None = None, failures: bool = True,
                only_run: bool = False, not_run_reason: str = "") -> None:
    """A score table per part, then each failing test with the one line of its reason (and its
    hint). only_run: leave the parts none of whose tests ran out of the table and the total,
    and name them after it as "not run" (`deepgrade check -m part`), with not_run_reason."""
    console = console or Console()
    a = scorecard.assignment
    ran = [p for p in scorecard.parts if p.tests] if only_run else scorecard.parts
    table = Table(title=escape(f"{a.name}: {a.title}"))
    table.add_column("part")
    table.add_column("tests passed", justify="right")
    table.add_column("score", justify="right")
    for p in ran:
        passed = sum(t.passed for t in p.tests)
        deferred = sum(t.status == "deferred" for t in p.tests)
        note = f" ({deferred} deferred to GPU)" if deferred else ""
        count = f"{passed}/{len(p.tests)}{note}" if p.tests else "not run"
        table.add_row(escape(p.name), count, f"{p.score:.2f} / {p.points:g}")
    total = round(sum(p.score for p in ran), 4), sum(p.points for p in ran)
    table.add_row("total", "", f"{total[0]:.2f} / {total[1]:g}", style="bold")
    console.print(table)
    skipped = [p.name for p in scorecard.parts if p not in ran]
    if skipped:
        console.print(escape(f"not run: {', '.join(skipped)}" + (f" ({not_run_reason})" if not_run_reason else "")))
    if failures:
        for t in scorecard.tests:
            if t.status == "failed":
                line = escape(f"{t.outcome.nodeid}: {_shorten(headline(t.outcome.message))}")
                # A skipped test scores 0 but is no failure (a quiz question checked only when graded).
                label = "[yellow]SKIPPED[/yellow]" if t.outcome.status == "skipped" else "[red]FAILED[/red]"
                console.print(f"{label} {line}", highlight=False)
                extra = hint(t.outcome.message)
                if extra:
                    console.print(escape(f"    {_shorten(extra)}"), highlight=False)

"""`deepgrade verify`: prove an assignment is sound before students see it.

1. The release in assignments/ is in sync with solutions/.
2. Every visible and hidden test passes on the reference.
3. Every test belongs to a part of grading.yml.
4. Every graded test fails on the stub (the released modules).
5. Nothing of the solution leaks: no solution line and no hidden test appears in the release.
GPU tests cannot be verified without CUDA; they are listed as such, never counted as verified.
"""
from __future__ import annotations

import re
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

from autograder.config import AssignmentConfig
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
    return report

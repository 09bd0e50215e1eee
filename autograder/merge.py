"""One result from two runs: a CPU run whose GPU tests were deferred, and a GPU run.

A CPU runner grades every test it can and tags each GPU test it had to skip as deferred
(``extra_data.deepgrade_status == "deferred"``, score 0). A GPU runner then grades those tests
(``deepgrade grade ... --runner gpu``). The merge takes each deferred test's entry from the GPU result
(matched by pytest node id) and recomputes the parts and the total; everything else comes from
the CPU result. A deferred test that the GPU run did not grade stays deferred, scoring 0.
"""
from __future__ import annotations

import copy
import json
import re
from pathlib import Path
from typing import Any


class MergeError(Exception):
    """The two results cannot be merged (different assignments, not deepgrade results)."""


def _nodeid(test: dict[str, Any]) -> str | None:
    return (test.get("extra_data") or {}).get("nodeid")


def _deferred(test: dict[str, Any]) -> bool:
    return (test.get("extra_data") or {}).get("deepgrade_status") == "deferred"


def merge_results(cpu: dict[str, Any], gpu: dict[str, Any]) -> dict[str, Any]:
    """The merged results.json dict; neither input is modified.

    Raises MergeError when the inputs are for different assignments or lack the node ids
    deepgrade writes."""
    a_cpu = (cpu.get("extra_data") or {}).get("assignment")
    a_gpu = (gpu.get("extra_data") or {}).get("assignment")
    if a_cpu is None or a_gpu is None:
        raise MergeError("both inputs must be results.json files written by `deepgrade grade`")
    if a_cpu != a_gpu:
        raise MergeError(f"the CPU result is for {a_cpu} and the GPU result for {a_gpu}")
    from_gpu = {_nodeid(t): t for t in gpu.get("tests", []) if _nodeid(t)}
    merged = copy.deepcopy(cpu)
    filled, missing = 0, []
    for i, test in enumerate(merged.get("tests", [])):
        if not _deferred(test):
            continue
        other = from_gpu.get(_nodeid(test))
        if other is None or _deferred(other):
            missing.append(test["name"])
            continue
        merged["tests"][i] = copy.deepcopy(other)
        filled += 1

    extra = merged.setdefault("extra_data", {})
    parts = extra.get("parts") or {}
    for info in parts.values():
        info["score"] = 0.0
    for test in merged.get("tests", []):
        part = (test.get("extra_data") or {}).get("part")
        if part in parts:
            parts[part]["score"] = round(parts[part]["score"] + test.get("score", 0.0), 4)
    merged["score"] = round(sum(t.get("score", 0.0) for t in merged.get("tests", [])), 4)
    merged["execution_time"] = round(cpu.get("execution_time", 0.0) + gpu.get("execution_time", 0.0), 3)
    extra["merged"] = {"gpu_tests_filled": filled, "still_deferred": len(missing)}

    # The output text begins "Title (hwN): score / max" and one line per part; rewrite those
    # with the merged numbers and keep the CPU run's notes below them.
    lines = (merged.get("output") or "").splitlines()
    if lines:
        max_score = extra.get("max_score")
        lines[0] = re.sub(r":\s*[-\d.]+\s*/\s*[-\d.]+\s*$",
                          f": {merged['score']:.2f} / {max_score:g}" if max_score is not None else "",
                          lines[0])
        part_lines = [f"  {p}: {info['score']:.2f} / {info['max_score']:g}" for p, info in parts.items()]
        notes = lines[1 + len(parts):]
        lines = [lines[0], *part_lines, *notes]
    lines.append(f"merged {filled} GPU test(s) from the GPU run")
    if missing:
        lines.append(f"{len(missing)} GPU test(s) were not graded on a GPU and score 0: "
                     + ", ".join(missing[:10]) + (" ..." if len(missing) > 10 else ""))
    merged["output"] = "\n".join(lines)
    return merged


def merge_files(cpu_path: Path, gpu_path: Path) -> dict[str, Any]:
    """merge_results of two results.json files. Raises MergeError when one cannot be read."""
    docs = []
    for path in (cpu_path, gpu_path):
        try:
            docs.append(json.loads(Path(path).read_text(encoding="utf-8")))
        except (OSError, ValueError) as exc:
            raise MergeError(f"{path}: cannot read a results.json ({exc})") from None
    return merge_results(*docs)

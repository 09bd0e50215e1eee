"""hw3 reference solution, checked against an independent implementation: torch.optim.

Each rule of solutions/hw3/optim.py runs 50 steps on a quadratic loss next to the torch
optimizer it corresponds to, in float64, and the two trajectories must agree to 1e-10. How each
rule maps onto torch:

- sgd_momentum <-> SGD(momentum=rho, dampening=0). Torch keeps buf = rho * buf + g and steps
  w -= lr * buf; we keep v = rho * v - lr * g and step w += v. With a constant learning rate
  v = -lr * buf exactly. When the learning rate changes, the conventions differ: torch applies
  the new rate to the whole buffer, ours only to the new gradient. Rescaling our velocity by
  lr_new / lr_old at the change restores the exact match (test_momentum_velocity_convention).
- nesterov_momentum <-> SGD(momentum=rho, nesterov=True). Torch steps w -= lr * (g + rho * buf)
  with the new buf; expanding both gives w += rho**2 * v_old - (1 + rho) * lr * g, the same.
- adagrad <-> Adagrad(lr_decay=0, initial_accumulator_value=0). Both add eps outside the square
  root: lr * g / (sqrt(cache) + eps). Torch's default eps is 1e-10, ours 1e-7; we pass ours.
- rmsprop <-> RMSprop(alpha=decay_rate, momentum=0, centered=False); eps outside the root in both.
- adam <-> Adam(amsgrad=False). Torch divides by sqrt(v) / sqrt(1 - beta2**t) + eps, which is
  sqrt(v_hat) + eps: eps is outside the root of the bias-corrected v, as in ours.
  (Had either put eps inside the root, sqrt(v_hat + eps), the two would differ by about
  eps / sqrt(v_hat) relative, which is why the placement is stated in the handout.)
- clip_grad_norm <-> torch.nn.utils.clip_grad_norm_, which scales by max_norm / (norm + 1e-6)
  for numerical safety; ours scales by max_norm / norm exactly, so they agree to about 1e-6.
- step_decay <-> StepLR; cosine_schedule <-> CosineAnnealingLR up to total_epochs (torch's
  keeps following the cosine back up after T_max, ours stays at lr_min).

The Rosenbrock test runs every rule on the Rosenbrock function at the learning rate the
handout and plot_paths.py document, and checks that it makes real progress from (-1.5, 2).

The last test checks the correct variants of the hidden bug catalog against the reference,
independently of the hidden tests: each must compute the same paths, clipped gradients and
learning rates, so that "a variant scores full marks" is a claim about correct code. (Whether
each one does score exactly its stated points is `deepgrade audit hw3`'s check, run by
tests/test_audit.py.)
"""
from __future__ import annotations

import copy
import math
from pathlib import Path

import numpy as np
import pytest

from autograder.audit import load_catalog
from autograder.config import load_config
from autograder.gradcheck import assert_close
from autograder.loader import load_modules

torch = pytest.importorskip("torch")

HW3 = Path(__file__).resolve().parents[1] / "solutions" / "hw3"
STEPS = 50


@pytest.fixture(scope="module")
def hw3():
    loaded = load_modules(HW3, ["optim", "plot_paths"])
    assert not loaded.errors, "\n".join(loaded.errors.values())
    return loaded.modules


@pytest.fixture(scope="module")
def problem():
    """A quadratic 0.5 * w.A.w - b.w over w of shape (3, 4), eigenvalues of A in [0.5, 8]."""
    rng = np.random.default_rng(1234)
    q, _ = np.linalg.qr(rng.standard_normal((12, 12)))
    A = (q * np.linspace(0.5, 8.0, 12)) @ q.T
    return {"A": A, "b": rng.standard_normal(12), "w0": rng.standard_normal((3, 4))}


def _numpy_run(update, problem, config, steps=STEPS):
    w, config = problem["w0"].copy(), copy.deepcopy(config)
    path = []
    for _ in range(steps):
        dw = (problem["A"] @ w.reshape(-1) - problem["b"]).reshape(w.shape)
        w, config = update(w, dw, config)
        path.append(w.copy())
    return path, config


def _torch_run(make_optimizer, problem, steps=STEPS):
    p = torch.tensor(problem["w0"], dtype=torch.float64, requires_grad=True)
    A = torch.tensor(problem["A"], dtype=torch.float64)
    b = torch.tensor(problem["b"], dtype=torch.float64)
    opt = make_optimizer([p])
    path = []
    for _ in range(steps):
        opt.zero_grad()
        flat = p.reshape(-1)
        loss = 0.5 * flat @ A @ flat - b @ flat
        loss.backward()
        opt.step()
        path.append(p.detach().numpy().copy())
    return path, opt.state[p]


def _same_path(ours, theirs, rule):
    for step, (a, b) in enumerate(zip(ours, theirs), start=1):
        assert_close(a, b, name=f"{rule} vs torch: w after step {step}", threshold=1e-10)


CASES = {
    "sgd": [
        ({"learning_rate": 0.05}, lambda ps: torch.optim.SGD(ps, lr=0.05)),
    ],
    "sgd_momentum": [
        ({"learning_rate": 0.02, "momentum": 0.9},
         lambda ps: torch.optim.SGD(ps, lr=0.02, momentum=0.9, dampening=0.0)),
        ({"learning_rate": 0.05, "momentum": 0.5},
         lambda ps: torch.optim.SGD(ps, lr=0.05, momentum=0.5, dampening=0.0)),
    ],
    "nesterov_momentum": [
        ({"learning_rate": 0.02, "momentum": 0.9},
         lambda ps: torch.optim.SGD(ps, lr=0.02, momentum=0.9, dampening=0.0, nesterov=True)),
        ({"learning_rate": 0.05, "momentum": 0.5},
         lambda ps: torch.optim.SGD(ps, lr=0.05, momentum=0.5, dampening=0.0, nesterov=True)),
    ],
    "adagrad": [
        ({"learning_rate": 0.3, "epsilon": 1e-7},
         lambda ps: torch.optim.Adagrad(
             ps, lr=0.3, lr_decay=0.0, initial_accumulator_value=0.0, eps=1e-7)),
    ],
    "rmsprop": [
        ({"learning_rate": 0.01, "decay_rate": 0.99, "epsilon": 1e-8},
         lambda ps: torch.optim.RMSprop(
             ps, lr=0.01, alpha=0.99, eps=1e-8, momentum=0.0, centered=False)),
        # decay_rate 0.98, not 0.9: a fast-decaying cache makes the path chaotic, so rounding
        # differences grow past any tolerance (see the hidden tests' SETTINGS).
        ({"learning_rate": 0.01, "decay_rate": 0.98, "epsilon": 1e-6},
         lambda ps: torch.optim.RMSprop(ps, lr=0.01, alpha=0.98, eps=1e-6)),
    ],
    "adam": [
        ({"learning_rate": 1e-3, "beta1": 0.9, "beta2": 0.999, "epsilon": 1e-8},
         lambda ps: torch.optim.Adam(ps, lr=1e-3, betas=(0.9, 0.999), eps=1e-8, amsgrad=False)),
        ({"learning_rate": 0.05, "beta1": 0.8, "beta2": 0.99, "epsilon": 1e-6},
         lambda ps: torch.optim.Adam(ps, lr=0.05, betas=(0.8, 0.99), eps=1e-6)),
    ],
}
PARAMS = [(rule, cfg, make) for rule, cases in CASES.items() for cfg, make in cases]
IDS = [f"{rule}-{i}" for rule, cases in CASES.items() for i in range(len(cases))]


@pytest.mark.parametrize("rule, config, make_optimizer", PARAMS, ids=IDS)
def test_trajectory_matches_torch(hw3, problem, rule, config, make_optimizer):
    ours, state = _numpy_run(getattr(hw3["optim"], rule), problem, config)
    theirs, torch_state = _torch_run(make_optimizer, problem)
    _same_path(ours, theirs, rule)
    # The state maps across too: this is what pins down each convention, not only the path.
    lr = config["learning_rate"]
    if rule in ("sgd_momentum", "nesterov_momentum"):
        assert_close(state["velocity"], -lr * torch_state["momentum_buffer"].numpy(),
                     name=f"{rule}: velocity vs -lr * torch momentum_buffer", threshold=1e-10)
    elif rule == "adagrad":
        assert_close(state["cache"], torch_state["sum"].numpy(),
                     name="adagrad cache vs torch sum", threshold=1e-10)
    elif rule == "rmsprop":
        assert_close(state["cache"], torch_state["square_avg"].numpy(),
                     name="rmsprop cache vs torch square_avg", threshold=1e-10)
    elif rule == "adam":
        assert_close(state["m"], torch_state["exp_avg"].numpy(), name="adam m", threshold=1e-10)
        assert_close(state["v"], torch_state["exp_avg_sq"].numpy(), name="adam v", threshold=1e-10)
        assert state["t"] == int(torch_state["step"]) == STEPS


def test_momentum_velocity_convention(hw3, problem):
    # Halve the learning rate after 20 steps. torch's buffer has no lr in it, so the new rate
    # applies to the whole buffer at once; our velocity carries the old rate. Rescaling our
    # velocity by lr_new / lr_old at the change gives the torch path exactly.
    lr_a, lr_b = 0.04, 0.02
    p = torch.tensor(problem["w0"], dtype=torch.float64, requires_grad=True)
    A = torch.tensor(problem["A"], dtype=torch.float64)
    b = torch.tensor(problem["b"], dtype=torch.float64)
    opt = torch.optim.SGD([p], lr=lr_a, momentum=0.9)
    w, config = problem["w0"].copy(), {"learning_rate": lr_a, "momentum": 0.9}
    plain_w, plain_config = w.copy(), dict(config)
    for step in range(1, STEPS + 1):
        if step == 21:
            opt.param_groups[0]["lr"] = lr_b
            config["learning_rate"] = plain_config["learning_rate"] = lr_b
            config["velocity"] = config["velocity"] * (lr_b / lr_a)
        opt.zero_grad()
        flat = p.reshape(-1)
        (0.5 * flat @ A @ flat - b @ flat).backward()
        opt.step()
        dw = (problem["A"] @ w.reshape(-1) - problem["b"]).reshape(w.shape)
        w, config = hw3["optim"].sgd_momentum(w, dw, config)
        plain_dw = (problem["A"] @ plain_w.reshape(-1) - problem["b"]).reshape(w.shape)
        plain_w, plain_config = hw3["optim"].sgd_momentum(plain_w, plain_dw, plain_config)
        assert_close(w, p.detach().numpy(),
                     name=f"rescaled momentum vs torch, step {step}", threshold=1e-10)
    # Without the rescaling the paths part after the change: the conventions really differ.
    assert np.max(np.abs(plain_w - p.detach().numpy())) > 1e-6


@pytest.mark.parametrize("scale, max_norm", [(3.0, 1.0), (0.1, 5.0), (0.0, 1.0)])
def test_clip_grad_norm_matches_torch(hw3, scale, max_norm):
    rng = np.random.default_rng(7)
    shapes = {"W1": (4, 3), "b1": (3,), "W2": (3, 2)}
    grads = {k: scale * rng.standard_normal(s) for k, s in shapes.items()}
    before = copy.deepcopy(grads)
    clipped, total = hw3["optim"].clip_grad_norm(grads, max_norm)
    tensors = []
    for g in grads.values():
        t = torch.zeros(g.shape, dtype=torch.float64, requires_grad=True)
        t.grad = torch.tensor(g, dtype=torch.float64)
        tensors.append(t)
    torch_total = float(torch.nn.utils.clip_grad_norm_(tensors, max_norm))
    assert math.isclose(total, torch_total, rel_tol=1e-12, abs_tol=1e-300)
    for (name, ours), t in zip(clipped.items(), tensors):
        # torch divides by norm + 1e-6; 1e-5 relative covers that and nothing larger.
        assert_close(ours, t.grad.numpy(), name=f"clipped[{name}] vs torch", threshold=1e-5)
        np.testing.assert_array_equal(grads[name], before[name])


def test_schedules_match_torch(hw3):
    optim = hw3["optim"]
    p = torch.zeros(1, requires_grad=True)
    step_opt = torch.optim.SGD([p], lr=0.1)
    step_sched = torch.optim.lr_scheduler.StepLR(step_opt, step_size=7, gamma=0.3)
    cos_opt = torch.optim.SGD([p], lr=0.1)
    cos_sched = torch.optim.lr_scheduler.CosineAnnealingLR(cos_opt, T_max=30, eta_min=0.004)
    for epoch in range(31):
        ours = optim.step_decay(0.1, epoch, drop=0.3, every=7)
        assert math.isclose(ours, step_opt.param_groups[0]["lr"], rel_tol=1e-12), f"epoch {epoch}"
        # torch updates the cosine rate recursively, so it drifts from the closed form by ~1e-15.
        ours = optim.cosine_schedule(0.1, epoch, 30, lr_min=0.004)
        assert math.isclose(ours, cos_opt.param_groups[0]["lr"], rel_tol=1e-9), f"epoch {epoch}"
        step_opt.step()
        cos_opt.step()
        step_sched.step()
        cos_sched.step()


@pytest.mark.parametrize("rule", list(CASES))
def test_every_rule_descends_rosenbrock(hw3, rule):
    plot_paths = hw3["plot_paths"]
    config = plot_paths.ROSENBROCK_CONFIGS[rule]
    assert plot_paths.ROSENBROCK_START == (-1.5, 2.0) and plot_paths.ROSENBROCK_STEPS <= 2000
    path, losses = plot_paths.run(rule, plot_paths.rosenbrock, plot_paths.ROSENBROCK_START, config, 2000)
    assert np.all(np.isfinite(losses)), f"{rule} diverged at lr {config['learning_rate']}"
    # From 12.5 at the start; every rule gets below 0.25 (most far below) at its documented rate.
    assert losses[0] == 12.5 and losses[-1] < 0.25, f"{rule}: loss {losses[0]} -> {losses[-1]}"


def test_handout_quotes_the_plotted_learning_rates(hw3):
    # The handout's table and plot_paths.py must not drift apart.
    text = (HW3 / "README.md").read_text(encoding="utf-8")
    for rule, config in hw3["plot_paths"].ROSENBROCK_CONFIGS.items():
        row = next((line for line in text.splitlines() if line.startswith(f"| `{rule}`")), None)
        assert row is not None, f"the handout has no table row for `{rule}`"
        lr = f"{config['learning_rate']:g}"
        assert lr in row, f"the handout's row for {rule} should quote lr {lr}"


def test_plot_script_draws_the_figure(hw3, tmp_path):
    pytest.importorskip("matplotlib")
    out = hw3["plot_paths"].main(tmp_path)
    assert out == tmp_path / "optimizer_paths.png"
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    # The handout embeds the committed copy of this figure.
    assert (HW3 / "figures" / out.name).is_file()
    assert f"](figures/{out.name})" in (HW3 / "README.md").read_text(encoding="utf-8")


# --- the catalog's correct variants compute what the reference computes -------------------------

VARIANTS = load_catalog(
    load_config(HW3.parents[1] / "grading.yml", check_tree=False).assignment("hw3")
).variants
# Every hyperparameter given, so that a variant's own way of filling in defaults is not what
# differs; config=None is compared on its own below.
VARIANT_CONFIGS = {
    "sgd": [{"learning_rate": 0.05}],
    "sgd_momentum": [{"learning_rate": 0.02, "momentum": 0.9}, {"learning_rate": 0.05, "momentum": 0.5}],
    "nesterov_momentum": [{"learning_rate": 0.02, "momentum": 0.9}, {"learning_rate": 0.05, "momentum": 0.5}],
    "adagrad": [{"learning_rate": 0.3, "epsilon": 1e-7}],
    "rmsprop": [{"learning_rate": 0.01, "decay_rate": 0.98, "epsilon": 1e-6}],
    "adam": [{"learning_rate": 1e-3, "beta1": 0.9, "beta2": 0.999, "epsilon": 1e-8},
             {"learning_rate": 0.05, "beta1": 0.8, "beta2": 0.99, "epsilon": 1e-6}],
}


@pytest.mark.parametrize("variant", VARIANTS, ids=[v.name for v in VARIANTS])
def test_catalog_variant_is_correct(hw3, problem, variant, tmp_path):
    (tmp_path / variant.file).write_text(variant.apply((HW3 / variant.file).read_text(encoding="utf-8")))
    loaded = load_modules(tmp_path, ["optim"])
    assert not loaded.errors, "\n".join(loaded.errors.values())
    ours, ref = loaded.modules["optim"], hw3["optim"]
    for rule, configs in VARIANT_CONFIGS.items():
        for config in configs:
            # Copies in, as the grader hands student code copies: some variants write into w.
            path, state = _numpy_run(lambda w, dw, c: getattr(ours, rule)(w.copy(), dw.copy(), c),
                                     problem, config, steps=30)
            ref_path, ref_state = _numpy_run(getattr(ref, rule), problem, config, steps=30)
            for step, (a, b) in enumerate(zip(path, ref_path), start=1):
                assert_close(a, b, name=f"{variant.name}: {rule} {config}, w after step {step}", threshold=1e-9)
            for key in ("velocity", "cache", "m", "v"):
                if key in ref_state:
                    assert_close(state[key], ref_state[key], name=f"{variant.name}: {rule} {key}", threshold=1e-9)
            assert state.get("t") == ref_state.get("t")
        w, dw = problem["w0"], problem["w0"][::-1] - 0.5
        got, _ = getattr(ours, rule)(w.copy(), dw.copy(), None)
        assert_close(got, getattr(ref, rule)(w.copy(), dw.copy(), None)[0],
                     name=f"{variant.name}: {rule} with config=None", threshold=1e-12)
    rng = np.random.default_rng(3)
    shapes = {"W1": (4, 3), "b1": (3,), "W2": (3, 2)}
    for scale, max_norm in [(3.0, 1.0), (1.0, 0.5), (0.1, 5.0), (0.0, 1.0)]:
        grads = {k: scale * rng.standard_normal(s) for k, s in shapes.items()}
        clipped, total = ours.clip_grad_norm(copy.deepcopy(grads), max_norm)
        ref_clipped, ref_total = ref.clip_grad_norm(copy.deepcopy(grads), max_norm)
        assert math.isclose(total, ref_total, rel_tol=1e-12, abs_tol=1e-300)
        assert sorted(clipped) == sorted(ref_clipped)
        for name in grads:
            # 1e-6: the torch-style safety term, max_norm / (norm + 1e-6), which the handout accepts.
            assert_close(clipped[name], ref_clipped[name], name=f"{variant.name}: clipped[{name}]", threshold=1e-6)
    for epoch in range(45):
        assert math.isclose(ours.step_decay(0.3, epoch, drop=0.7, every=4), ref.step_decay(0.3, epoch, drop=0.7, every=4),
                            rel_tol=1e-12)
        assert math.isclose(ours.cosine_schedule(0.3, epoch, 30, lr_min=0.01),
                            ref.cosine_schedule(0.3, epoch, 30, lr_min=0.01), rel_tol=1e-12)


"""Degenerate submissions of hw5 (the MNIST MLP in PyTorch) must earn nothing.

test_degenerate.py does this for the numpy assignments with one generic wrapper that turns
every number a function returns into a zero. hw5's functions return models, optimizers and
histories, and its tests used to check properties (a shape, a mode, "the loss went down"), so
its degenerate submissions are written out by hand: code appended to the reference mlp.py that
replaces every public name (the given helpers too, where a kind says so):

- zeros: MLP keeps the reference's layers and parameters, but forward returns zero scores of
  the right shape; logits and predict return zeros of the right shape and dtype;
  count_parameters 0; make_optimizer the reference's optimizer with lr 0; train_one_epoch and
  evaluate 0.0 without touching the model; fit an untrained model, in eval mode as documented,
  with a history whose lists have one entry per epoch and whose every number is zero;
  plot_history writes nothing and returns the absolute path it was given.
- liar: every result has the right type and shape and agrees with the others, but nothing is
  computed. The MLP keeps its parameters but its scores ignore them (class 0 always wins; in
  train mode dropout masks them, with the inverted scaling, and batch norm makes them depend
  on the batch, so that the mode tests see the effects they look for); logits is the given
  one, so it agrees with forward; predict answers class 0, what its forward's argmax always
  is, in eval mode, without asking the model; evaluate is the accuracy of that answer on the
  loader's labels, in eval mode (the tests of predict and evaluate run them on models built
  from torch's own layers too, so they must not rely on a forward that is always 0: a predict
  that is the true argmax is a correct predict, and earns its points); train_one_epoch puts the
  model in train mode and returns log(num_classes), halved at each later epoch, without a
  step; count_parameters counts the weight matrices only; make_optimizer returns the right
  optimizer class with the right hyperparameters, over a parameter of its own, so it never
  moves the model's; fit returns an untrained model (seeded, in eval mode) with a history
  made by those liars, its losses shifted by the seed; plot_history saves a real PNG of an
  empty figure.
- raises: every public function, and MLP's constructor, raises ValueError.

Before the tests were strengthened (with values computed from the model's weights: numpy in
the visible tests, the reference's twin of the model in the hidden ones), zeros scored 20.55
and liar 54.60 of 100. Each must now score exactly 0 of the 85 points a CPU machine grades;
the 15 points of the GPU parts are deferred here and score 0 anyway. One hw5 grade per kind
(about 15 s each).
"""
from __future__ import annotations

import math
import re
from pathlib import Path

import numpy as np
import pytest

from autograder.grade import grade
from autograder.loader import load_modules

from .test_degenerate import passed_tests

# Appended to mlp.py. The reference's public names are kept first, so that a replacement can
# subclass the reference's MLP or call the reference where it needs a real object.
PRELUDE = '''
# ---- degenerate hw5, appended by tests/redteam/test_degenerate_hw5.py ----
import math

_dg_ref = {_dg_k: _dg_v for _dg_k, _dg_v in list(globals().items()) if not _dg_k.startswith("_")}


def _dg_classes(model):
    """How many scores model gives (the tests also pass models of torch's own layers, which
    have no num_classes): the out_features of its last Linear."""
    return [m for m in model.modules() if isinstance(m, nn.Linear)][-1].out_features
'''

KINDS = {
    "zeros": '''
class MLP(_dg_ref["MLP"]):
    """The reference's layers and parameters; every score is zero."""

    def forward(self, x):
        return torch.zeros(x.shape[0], self.num_classes, device=x.device)


def count_parameters(model):
    return 0


def logits(model, X, device="cpu", batch_size=1024):
    return np.zeros((len(X), _dg_classes(model)), np.float32)


def predict(model, X, device="cpu"):
    return np.zeros(len(X), np.int64)


def make_optimizer(model, name="adam", lr=1e-3, weight_decay=0.0):
    return _dg_ref["make_optimizer"](model, name, lr=0.0, weight_decay=0.0)


def train_one_epoch(model, loader, optimizer, device, scaler=None, amp_dtype=None):
    return 0.0


def evaluate(model, loader, device):
    return 0.0


def fit(config=None):
    cfg = dict(DEFAULT_CONFIG, **(config or {}))
    X = cfg["X_train"]
    model = MLP(input_dim=784 if X is None else int(np.prod(np.shape(X)[1:])),
                hidden_dims=tuple(cfg["hidden_dims"]), dropout=cfg["dropout"],
                batchnorm=cfg["batchnorm"])
    model.eval()
    epochs = int(cfg["epochs"])
    return model, {"loss": [0.0] * epochs, "accuracy": [0.0] * epochs, "device": "cpu",
                   "amp_dtype": None, "grad_scaler": False, "data_source": "given",
                   "seconds": 0.0, "epochs": epochs, "seed": 0, "num_parameters": 0}


def plot_history(history, path):
    return os.path.abspath(path)
''',
    "liar": '''
class MLP(_dg_ref["MLP"]):
    """The reference's layers and parameters; scores that ignore them."""

    def forward(self, x):
        x = x.reshape(x.shape[0], -1)
        ink = x.abs().mean(dim=1, keepdim=True)
        scores = torch.cat([1.0 + ink, 0.01 * ink.expand(-1, self.num_classes - 1)], dim=1)
        if self.training:
            for layer in self.net:
                if isinstance(layer, nn.Dropout):
                    keep = (torch.rand_like(scores) >= layer.p).float()
                    scores = scores * keep / (1.0 - layer.p)
                if isinstance(layer, nn.BatchNorm1d):
                    scores = scores + (ink - ink.mean())  # the batch shows; the argmax stays
        return scores


def count_parameters(model):
    return int(sum(p.numel() for p in model.parameters() if p.dim() > 1))


def predict(model, X, device="cpu"):
    model.eval()
    return np.zeros(len(X), np.int64)  # the argmax of this MLP's scores, whatever the model


def make_optimizer(model, name="adam", lr=1e-3, weight_decay=0.0):
    own = [nn.Parameter(torch.zeros(1))]
    if name == "sgd":
        return torch.optim.SGD(own, lr=lr, momentum=0.9, weight_decay=weight_decay)
    if name == "adam":
        return torch.optim.Adam(own, lr=lr, weight_decay=weight_decay)
    raise ValueError(f"optimizer must be 'sgd' or 'adam', got {name!r}")


def train_one_epoch(model, loader, optimizer, device, scaler=None, amp_dtype=None):
    model.train()
    done = getattr(model, "_dg_epochs", 0)
    model._dg_epochs = done + 1
    return float(math.log(_dg_classes(model)) * 0.5 ** done)


def evaluate(model, loader, device):
    model.eval()
    correct = count = 0
    for xb, yb in loader:
        correct += int((yb.numpy() == 0).sum())  # what predict answers, whatever the model
        count += len(yb)
    return correct / max(count, 1)


def fit(config=None):
    cfg = dict(DEFAULT_CONFIG, **(config or {}))
    X, y = cfg["X_train"], cfg["y_train"]
    torch.manual_seed(int(cfg["seed"]))
    model = MLP(input_dim=int(np.prod(np.shape(X)[1:])), hidden_dims=tuple(cfg["hidden_dims"]),
                dropout=cfg["dropout"], batchnorm=cfg["batchnorm"])
    loader = make_loader(X, y, cfg["batch_size"], seed=cfg["seed"])
    optimizer = make_optimizer(model, cfg["optimizer"], cfg["lr"], cfg["weight_decay"])
    history = {"loss": [], "accuracy": []}
    for _ in range(int(cfg["epochs"])):
        # Shifted by the seed, so that two seeds give two histories and one seed one.
        history["loss"].append(train_one_epoch(model, loader, optimizer, "cpu") + 1e-3 * cfg["seed"])
        history["accuracy"].append(evaluate(model, loader, "cpu"))
    model.eval()
    history.update(device="cpu", amp_dtype=None, grad_scaler=False, data_source="given",
                   seconds=0.5, epochs=int(cfg["epochs"]), seed=int(cfg["seed"]),
                   num_parameters=count_parameters(model))
    return model, history


def plot_history(history, path):
    from matplotlib.figure import Figure

    Figure(figsize=(9, 3.5)).savefig(path)
    return os.path.abspath(path)
''',
    "raises": '''
def _dg_raise(name):
    def degenerate(*args, **kwargs):
        # Naming the numbers it was given, as a good error message does.
        numbers = [a for a in [*args, *kwargs.values()] if isinstance(a, (int, float))]
        raise ValueError(f"{name}{tuple(numbers)}: degenerate submission, always ValueError")
    degenerate.__name__ = degenerate.__qualname__ = name
    return degenerate


class MLP(_dg_ref["MLP"]):
    def __init__(self, *args, **kwargs):
        raise ValueError("MLP: degenerate submission, always ValueError")


for _dg_name, _dg_obj in list(_dg_ref.items()):
    # Every function mlp.py defines, the given ones (make_loader, logits) too.
    if _dg_name != "MLP" and callable(_dg_obj) and getattr(_dg_obj, "__module__", None) == __name__:
        globals()[_dg_name] = _dg_raise(_dg_name)
''',
}

CASES = ["zeros", "liar", "raises"]


def make_degenerate(course, kind: str, dest: Path) -> Path:
    """The reference mlp.py with the `kind` replacements appended (built at test time, so that
    it follows the reference as it changes), and the quiz's answers.yml as released: blank."""
    assignment = course.assignment("hw5")
    dest.mkdir(parents=True)
    for fname in assignment.files:
        if not fname.endswith(".py"):
            (dest / fname).write_bytes((assignment.release_dir / fname).read_bytes())
            continue
        text = (assignment.solution_dir / fname).read_text(encoding="utf-8")
        (dest / fname).write_text(text + "\n\n" + PRELUDE + KINDS[kind], encoding="utf-8")
    return dest


def load_degenerate(course, kind: str, tmp_path: Path):
    """The degenerate mlp module, imported here (our own code), beside the course's mnist_data."""
    folder = make_degenerate(course, kind, tmp_path / f"hw5-{kind}")
    support = course.assignment("hw5").solution_dir / "mnist_data.py"
    (folder / "mnist_data.py").write_text(support.read_text(encoding="utf-8"), encoding="utf-8")
    loaded = load_modules(folder, ["mlp", "mnist_data"])
    assert not loaded.errors, loaded.errors
    return loaded.modules["mlp"]


def clusters(n=120, dim=20, num_classes=10):
    rng = np.random.default_rng(0)
    y = np.arange(n) % num_classes
    X = rng.normal(size=(num_classes, dim))[y] * 2.0 + 0.7 * rng.normal(size=(n, dim))
    return X.astype(np.float32), y.astype(np.int64)


def test_the_degenerate_submissions_do_what_they_say(course, tmp_path):
    # Score 0 below proves that they are degenerate; this shows that they are the intended
    # ones: right types and shapes, parameters kept, results that agree with one another.
    X, y = clusters()
    zeros = load_degenerate(course, "zeros", tmp_path)
    model = zeros.MLP(input_dim=20, hidden_dims=(8,))
    assert sum(p.numel() for p in model.parameters()) == 20 * 8 + 8 + 8 * 10 + 10
    scores = zeros._dg_ref["logits"](model, X)  # the given logits: forward's own output
    assert scores.shape == (120, 10) and scores.dtype == np.float32 and not scores.any()
    assert zeros.predict(model, X).dtype == np.int64 and not zeros.predict(model, X).any()
    fitted, history = zeros.fit({"X_train": X, "y_train": y, "epochs": 3, "progress": False})
    assert fitted.training is False and history["loss"] == [0.0] * 3 and history["accuracy"] == [0.0] * 3
    assert zeros.plot_history(history, str(tmp_path / "h.png")) == str(tmp_path / "h.png")
    assert not (tmp_path / "h.png").exists()

    liar = load_degenerate(course, "liar", tmp_path)
    model = liar.MLP(input_dim=20, hidden_dims=(8,), dropout=0.5)
    start = [p.detach().clone() for p in model.parameters()]
    loader = liar.make_loader(X, y, batch_size=32, seed=0)
    optimizer = liar.make_optimizer(model, "adam", lr=0.01, weight_decay=0.1)
    assert optimizer.defaults["lr"] == 0.01 and optimizer.defaults["weight_decay"] == 0.1
    model.eval()
    losses = [liar.train_one_epoch(model, loader, optimizer, "cpu") for _ in range(3)]
    assert model.training is True
    assert losses == [math.log(10), math.log(10) / 2, math.log(10) / 4]
    assert all(a.equal(b) for a, b in zip(start, model.parameters()))  # no step was taken
    labels = liar.predict(model, X)
    assert model.training is False and labels.shape == (120,) and not labels.any()
    assert liar.evaluate(model, loader, "cpu") == pytest.approx(np.mean(y == 0))
    model.train()
    assert not np.allclose(liar.logits(model, X), liar.logits(model, X))  # "dropout"
    assert liar.count_parameters(model) == 20 * 8 + 8 * 10
    fitted, history = liar.fit({"X_train": X, "y_train": y, "epochs": 2, "progress": False, "seed": 3})
    assert fitted.training is False and len(history["loss"]) == 2 and history["loss"][1] < history["loss"][0]
    assert liar.plot_history(history, str(tmp_path / "l.png")) == str(tmp_path / "l.png")
    assert (tmp_path / "l.png").read_bytes()[:4] == b"\x89PNG"

    raises = load_degenerate(course, "raises", tmp_path)
    with pytest.raises(ValueError, match="always ValueError"):
        raises.MLP()
    with pytest.raises(ValueError, match="always ValueError"):
        raises.make_loader(X, y)


# A failure of a zeros or liar submission must be a verdict on the values it returned (an
# assertion of the test, or the engine's GradientError: an assertion with a note on what feeds
# it), not a crash, which would score 0 and prove nothing.
VERDICT = re.compile(r"^(AssertionError|autograder\.gradcheck\.GradientError)\b")


@pytest.mark.parametrize("kind", CASES)
def test_degenerate_hw5_scores_zero(course, tmp_path, kind):
    sub = make_degenerate(course, kind, tmp_path / "submission")
    result = grade(course, course.assignment("hw5"), sub, tmp_path / "results.json")
    card = result.scorecard
    graded = [t for t in card.tests if t.status != "deferred"]
    # 39 tests of the CPU parts at present: fewer means that some were not collected.
    total = sum(part.points for part in course.assignment("hw5").parts.values())  # the quiz's 12 too
    assert card.max_score == total and len(graded) >= 39, "hw5: not everything was graded"
    # Only the GPU parts may be left to a GPU runner (on this machine they are).
    assert all(t.part in ("mlp_full_mnist", "mlp_gpu") for t in card.tests if t.status == "deferred")
    assert card.score == 0, (
        f"hw5 {kind}: a degenerate submission scored {card.score} of {card.max_score}; "
        "these tests passed:\n" + "\n".join(passed_tests(result))
    )
    for test in graded:
        message = test.outcome.message.strip()
        if test.part == "quiz":  # the blank answers.yml: each question says it was not answered
            ok = "not answered" in message
        else:
            ok = "always ValueError" in message if kind == "raises" else bool(VERDICT.match(message))
        assert ok, f"hw5 {kind}: {test.outcome.name} failed for another reason:\n{message[:600]}"

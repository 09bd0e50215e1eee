"""The hw4 reference solution (solutions/hw4/rnn_layers.py) agrees with PyTorch.

Forward passes are compared with torch.nn.RNN / RNNCell / LSTM / LSTMCell, and backward passes
with torch autograd, in float64 on random sizes. Conventions that differ:
- torch stores weights as (out, in), ours as (in, out): transpose.
- torch orders the LSTM gates i, f, g, o in its 4H axis, ours i, f, o, g: permute the blocks.
- torch has two biases (input and hidden): ours goes in bias_ih, and bias_hh is zero.
"""
import zlib
from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from autograder.loader import load_modules  # noqa: E402

SOLUTION_DIR = Path(__file__).resolve().parents[1] / "solutions" / "hw4"
THRESHOLD = 1e-10


@pytest.fixture(scope="module")
def ref():
    loaded = load_modules(SOLUTION_DIR, ["rnn_layers"])
    assert not loaded.errors, loaded.errors
    return loaded.modules["rnn_layers"]


@pytest.fixture
def rng(request):
    return np.random.default_rng(zlib.crc32(request.node.name.encode()))


def sizes(rng, batch=None, steps=None):
    """Random (N, T, D, H), small."""
    N = batch if batch is not None else int(rng.integers(1, 5))
    T = steps if steps is not None else int(rng.integers(1, 6))
    return N, T, int(rng.integers(1, 6)), int(rng.integers(1, 6))


def lstm_weights(rng, D, H, scale=1.0):
    """Random Wx (D, 4H), Wh (H, 4H), b (4H,) in our layout."""
    return (scale * rng.standard_normal((D, 4 * H)), scale * rng.standard_normal((H, 4 * H)),
            rng.standard_normal(4 * H))


def ours_to_torch_gates(a, H):
    """Reorder the 4H blocks of the last axis from i, f, o, g to torch's i, f, g, o."""
    i, f, o, g = (a[..., k * H:(k + 1) * H] for k in range(4))
    return np.concatenate([i, f, g, o], axis=-1)


def torch_to_ours_gates(a, H):
    i, f, g, o = (a[..., k * H:(k + 1) * H] for k in range(4))
    return np.concatenate([i, f, o, g], axis=-1)


def close(a, b, what):
    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    assert a.shape == b.shape, f"{what}: shape {a.shape} vs {b.shape}"
    err = np.max(np.abs(a - b) / np.maximum(np.abs(a) + np.abs(b), 1e-8), initial=0.0)
    assert err < THRESHOLD, f"{what}: relative error {err:.3e}"


def t(a, grad=False):
    return torch.tensor(a, dtype=torch.float64, requires_grad=grad)


def load_lstm(module, Wx, Wh, b, H, suffix=""):
    """Copy our LSTM weights into a torch LSTM or LSTMCell."""
    with torch.no_grad():
        getattr(module, "weight_ih" + suffix).copy_(t(ours_to_torch_gates(Wx, H).T))
        getattr(module, "weight_hh" + suffix).copy_(t(ours_to_torch_gates(Wh, H).T))
        getattr(module, "bias_ih" + suffix).copy_(t(ours_to_torch_gates(b, H)))
        getattr(module, "bias_hh" + suffix).zero_()


def load_rnn(module, Wx, Wh, b, suffix=""):
    with torch.no_grad():
        getattr(module, "weight_ih" + suffix).copy_(t(Wx.T))
        getattr(module, "weight_hh" + suffix).copy_(t(Wh.T))
        getattr(module, "bias_ih" + suffix).copy_(t(b))
        getattr(module, "bias_hh" + suffix).zero_()


@pytest.mark.parametrize("trial", range(4))
def test_lstm_step_matches_torch_lstmcell(ref, rng, trial):
    N, _, D, H = sizes(rng)
    x, h, c = rng.standard_normal((N, D)), rng.standard_normal((N, H)), rng.standard_normal((N, H))
    Wx, Wh, b = lstm_weights(rng, D, H)
    dnext_h, dnext_c = rng.standard_normal((N, H)), rng.standard_normal((N, H))

    next_h, next_c, cache = ref.lstm_step_forward(x, h, c, Wx, Wh, b)
    dx, dh, dc, dWx, dWh, db = ref.lstm_step_backward(dnext_h, dnext_c, cache)

    cell = torch.nn.LSTMCell(D, H).double()
    load_lstm(cell, Wx, Wh, b, H)
    tx, th, tc = t(x, True), t(h, True), t(c, True)
    th_next, tc_next = cell(tx, (th, tc))
    close(next_h, th_next.detach().numpy(), "next_h")
    close(next_c, tc_next.detach().numpy(), "next_c")
    ((th_next * t(dnext_h)).sum() + (tc_next * t(dnext_c)).sum()).backward()
    close(dx, tx.grad.numpy(), "dx")
    close(dh, th.grad.numpy(), "dprev_h")
    close(dc, tc.grad.numpy(), "dprev_c")
    close(dWx, torch_to_ours_gates(cell.weight_ih.grad.numpy().T, H), "dWx")
    close(dWh, torch_to_ours_gates(cell.weight_hh.grad.numpy().T, H), "dWh")
    close(db, torch_to_ours_gates(cell.bias_ih.grad.numpy(), H), "db")


@pytest.mark.parametrize("trial", range(4))
def test_lstm_sequence_matches_torch_lstm(ref, rng, trial):
    N, T, D, H = sizes(rng, steps=[1, 3, 5, 7][trial])
    x, h0 = rng.standard_normal((N, T, D)), rng.standard_normal((N, H))
    Wx, Wh, b = lstm_weights(rng, D, H)
    dout = rng.standard_normal((N, T, H))

    h, cache = ref.lstm_forward(x, h0, Wx, Wh, b)
    dx, dh0, dWx, dWh, db = ref.lstm_backward(dout, cache)

    lstm = torch.nn.LSTM(D, H, batch_first=True).double()
    load_lstm(lstm, Wx, Wh, b, H, suffix="_l0")
    tx, th0 = t(x, True), t(h0[None], True)
    th, _ = lstm(tx, (th0, torch.zeros(1, N, H, dtype=torch.float64)))
    close(h, th.detach().numpy(), "h")
    (th * t(dout)).sum().backward()
    close(dx, tx.grad.numpy(), "dx")
    close(dh0, th0.grad.numpy()[0], "dh0")
    close(dWx, torch_to_ours_gates(lstm.weight_ih_l0.grad.numpy().T, H), "dWx")
    close(dWh, torch_to_ours_gates(lstm.weight_hh_l0.grad.numpy().T, H), "dWh")
    close(db, torch_to_ours_gates(lstm.bias_ih_l0.grad.numpy(), H), "db")


@pytest.mark.parametrize("trial", range(3))
def test_rnn_step_matches_torch_rnncell(ref, rng, trial):
    N, _, D, H = sizes(rng)
    x, h = rng.standard_normal((N, D)), rng.standard_normal((N, H))
    Wx, Wh, b = rng.standard_normal((D, H)), rng.standard_normal((H, H)), rng.standard_normal(H)
    dnext_h = rng.standard_normal((N, H))

    next_h, cache = ref.rnn_step_forward(x, h, Wx, Wh, b)
    dx, dh, dWx, dWh, db = ref.rnn_step_backward(dnext_h, cache)

    cell = torch.nn.RNNCell(D, H, nonlinearity="tanh").double()
    load_rnn(cell, Wx, Wh, b)
    tx, th = t(x, True), t(h, True)
    out = cell(tx, th)
    close(next_h, out.detach().numpy(), "next_h")
    (out * t(dnext_h)).sum().backward()
    close(dx, tx.grad.numpy(), "dx")
    close(dh, th.grad.numpy(), "dprev_h")
    close(dWx, cell.weight_ih.grad.numpy().T, "dWx")
    close(dWh, cell.weight_hh.grad.numpy().T, "dWh")
    close(db, cell.bias_ih.grad.numpy(), "db")


@pytest.mark.parametrize("trial", range(4))
def test_rnn_sequence_matches_torch_rnn(ref, rng, trial):
    N, T, D, H = sizes(rng, steps=[1, 2, 4, 8][trial])
    x, h0 = rng.standard_normal((N, T, D)), rng.standard_normal((N, H))
    Wx, Wh = rng.standard_normal((D, H)), 0.5 * rng.standard_normal((H, H))
    b = rng.standard_normal(H)
    dout = rng.standard_normal((N, T, H))

    h, cache = ref.rnn_forward(x, h0, Wx, Wh, b)
    dx, dh0, dWx, dWh, db = ref.rnn_backward(dout, cache)

    rnn = torch.nn.RNN(D, H, nonlinearity="tanh", batch_first=True).double()
    load_rnn(rnn, Wx, Wh, b, suffix="_l0")
    tx, th0 = t(x, True), t(h0[None], True)
    th, _ = rnn(tx, th0)
    close(h, th.detach().numpy(), "h")
    (th * t(dout)).sum().backward()
    close(dx, tx.grad.numpy(), "dx")
    close(dh0, th0.grad.numpy()[0], "dh0")
    close(dWx, rnn.weight_ih_l0.grad.numpy().T, "dWx")
    close(dWh, rnn.weight_hh_l0.grad.numpy().T, "dWh")
    close(db, rnn.bias_ih_l0.grad.numpy(), "db")


def test_temporal_softmax_loss_matches_torch_cross_entropy(ref):
    rng = np.random.default_rng(4)
    N, T, V = 3, 5, 7
    x = 3.0 * rng.standard_normal((N, T, V))
    y = rng.integers(0, V, size=(N, T))
    mask = rng.random((N, T)) < 0.7
    loss, dx = ref.temporal_softmax_loss(x, y, mask)

    tx = t(x, True)
    per_step = torch.nn.functional.cross_entropy(
        tx.reshape(N * T, V), torch.tensor(y.reshape(-1)), reduction="none"
    )
    tloss = (per_step * torch.tensor(mask.reshape(-1), dtype=torch.float64)).sum() / N
    tloss.backward()
    close(loss, tloss.item(), "loss")
    close(dx, tx.grad.numpy(), "dx")


def test_lstm_huge_preactivations_match_torch(ref):
    # Gates saturated by pre-activations of about +-1000: still finite and equal to torch.
    rng = np.random.default_rng(7)
    N, T, D, H = 2, 3, 4, 3
    x, h0 = rng.standard_normal((N, T, D)), rng.standard_normal((N, H))
    Wx, Wh, _ = lstm_weights(rng, D, H, scale=1000.0)
    b = np.zeros(4 * H)
    with np.errstate(over="raise", invalid="raise", divide="raise"):
        h, _ = ref.lstm_forward(x, h0, Wx, Wh, b)
    lstm = torch.nn.LSTM(D, H, batch_first=True).double()
    load_lstm(lstm, Wx, Wh, b, H, suffix="_l0")
    th, _ = lstm(t(x), (t(h0[None]), torch.zeros(1, N, H, dtype=torch.float64)))
    assert np.all(np.isfinite(h))
    close(h, th.detach().numpy(), "h")


# --- the correct variants of the bug catalog are correct ------------------------------------------
# `deepgrade audit hw4` (tests/test_audit.py) grades every variant with the assignment's tests.
# Here each one is checked independently of those tests: every function of the varied module
# must compute what the reference computes, on inputs of its own (a variant that passed the
# tests by luck of their inputs would hide a blind spot instead of proving the tests fair).

def _values(result):
    """The arrays and numbers in a function's result, caches left out."""
    if isinstance(result, tuple):
        result = [r for r in result if isinstance(r, (np.ndarray, float, np.floating))]
        return [np.asarray(r, dtype=np.float64) for r in result]
    return [np.asarray(result, dtype=np.float64)]


def _runs(m, rng):
    """name -> what module `m` computes on fixed random inputs (forwards, and each backward
    given its own forward's cache), for every function of rnn_layers.py."""
    N, T, D, H, V = 3, 4, 3, 2, 5
    x, x_seq = rng.standard_normal((N, D)), rng.standard_normal((N, T, D))
    h, c = rng.standard_normal((N, H)), rng.standard_normal((N, H))
    Wx, Wh, b = 0.5 * rng.standard_normal((D, H)), 0.5 * rng.standard_normal((H, H)), rng.standard_normal(H)
    Wx4, Wh4, b4 = lstm_weights(rng, D, H, scale=0.5)
    dh, dc, dh_seq = rng.standard_normal((N, H)), rng.standard_normal((N, H)), rng.standard_normal((N, T, H))
    words, W = rng.integers(0, V, size=(N, T)), rng.standard_normal((V, D))
    w_aff, b_aff = rng.standard_normal((D, V)), rng.standard_normal(V)
    dout_aff, dout_emb = rng.standard_normal((N, T, V)), rng.standard_normal((N, T, D))
    scores, labels = 3.0 * rng.standard_normal((N, T, V)), rng.integers(0, V, size=(N, T))
    mask = rng.random((N, T)) < 0.6
    big = 1000.0 * rng.standard_normal((N, T, V))
    step = m.rnn_step_forward(x, h, Wx, Wh, b)
    seq = m.rnn_forward(x_seq, h, Wx, Wh, b)
    lstep = m.lstm_step_forward(x, h, c, Wx4, Wh4, b4)
    lseq = m.lstm_forward(x_seq, h, Wx4, Wh4, b4)
    emb = m.word_embedding_forward(words, W)
    aff = m.temporal_affine_forward(x_seq, w_aff, b_aff)
    extremes = [-1000.0, -50.0, 0.0, 50.0, 1000.0]
    return {
        "sigmoid": m.sigmoid(np.concatenate([8.0 * rng.standard_normal(20), extremes])),
        "rnn_step_forward": step,
        "rnn_step_backward": m.rnn_step_backward(dh.copy(), step[-1]),
        "rnn_forward": seq,
        "rnn_backward": m.rnn_backward(dh_seq.copy(), seq[-1]),
        "lstm_step_forward": lstep,
        "lstm_step_backward": m.lstm_step_backward(dh.copy(), dc.copy(), lstep[-1]),
        "lstm_forward": lseq,
        "lstm_backward": m.lstm_backward(dh_seq.copy(), lseq[-1]),
        "word_embedding_forward": emb,
        "word_embedding_backward": m.word_embedding_backward(dout_emb.copy(), emb[-1]),
        "temporal_affine_forward": aff,
        "temporal_affine_backward": m.temporal_affine_backward(dout_aff.copy(), aff[-1]),
        "temporal_softmax_loss": m.temporal_softmax_loss(scores, labels, mask),
        "temporal_softmax_loss with scores of +-1000": m.temporal_softmax_loss(big, labels, mask),
    }


def _variants():
    from autograder.audit import load_catalog
    from autograder.config import load_config

    a = load_config(SOLUTION_DIR.parents[1] / "grading.yml", check_tree=False).assignment("hw4")
    return load_catalog(a).variants


@pytest.mark.parametrize("variant", _variants(), ids=lambda v: v.name)
def test_catalog_variant_computes_what_the_reference_does(ref, variant, tmp_path):
    (tmp_path / variant.file).write_text(variant.apply((SOLUTION_DIR / variant.file).read_text()))
    loaded = load_modules(tmp_path, [Path(variant.file).stem])
    assert not loaded.errors, loaded.errors
    # Numerically stable as the handout asks: no overflow anywhere, even at scores of +-1000.
    with np.errstate(over="raise", invalid="raise", divide="raise"):
        mine = _runs(loaded.modules["rnn_layers"], np.random.default_rng(11))
    expected = _runs(ref, np.random.default_rng(11))
    for name, result in expected.items():
        got, want = _values(mine[name]), _values(result)
        assert len(got) == len(want), f"{variant.name}: {name} returns {len(got)} values, not {len(want)}"
        for k, (g, e) in enumerate(zip(got, want)):
            assert np.all(np.isfinite(g)), f"{variant.name}: {name} value {k} is not finite"
            np.testing.assert_allclose(g, e, rtol=1e-10, atol=1e-12,
                                       err_msg=f"{variant.name}: {name} value {k}")

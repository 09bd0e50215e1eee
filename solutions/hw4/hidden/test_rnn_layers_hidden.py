"""Hidden tests for hw4 (recurrent nets): gradient checks on several shapes, including the
edges (one time step, a batch of one, a hidden size of one), masks in the temporal loss,
saturated gates, and comparisons with the reference solution."""
import warnings

import numpy as np
import pytest

from autograder.gradcheck import assert_close, check_gradients, numeric_gradients

STEP_THRESHOLD = 1e-7
SEQUENCE_THRESHOLD = 1e-6
# Forward values are compared with the reference up to rounding differences only.
MATCH_THRESHOLD = 1e-9

STEP_SHAPES = [(3, 4, 5), (1, 3, 2), (2, 3, 1), (1, 1, 1)]  # (N, D, H)
SEQUENCE_SHAPES = [(2, 3, 4, 3), (1, 5, 2, 3), (3, 1, 3, 2), (2, 4, 3, 1)]  # (N, T, D, H)


def shape_id(shape):
    return "x".join(str(s) for s in shape)


def rnn_params(rng, D, H):
    return {
        "Wx": 0.4 * rng.standard_normal((D, H)),
        "Wh": 0.4 * rng.standard_normal((H, H)),
        "b": 0.2 * rng.standard_normal(H),
    }


def lstm_params(rng, D, H, scale=0.5):
    return {
        "Wx": scale * rng.standard_normal((D, 4 * H)),
        "Wh": scale * rng.standard_normal((H, 4 * H)),
        "b": 0.2 * rng.standard_normal(4 * H),
    }


def grad_name(name, args):
    return f"gradient d{name} (input '{name}', shape {np.shape(args[name])})"


def assert_all_close(got, expected, names, threshold=MATCH_THRESHOLD, what="expected"):
    assert len(got) == len(expected), (
        f"expected a tuple of {len(expected)} values ({', '.join(names)}), got {len(got)}"
    )
    for g, e, n in zip(got, expected, names):
        assert_close(g, e, name=n, threshold=threshold, what=what)


def check_forward(got, expected, name):
    """The forward value a gradient check differentiates, against the reference: the check
    compares the backward with numerical gradients of the student's own forward, which a
    wrong forward (all zeros, say) and a backward wrong the same way would pass."""
    assert_close(got, expected, name=f"{name} (the forward pass of the gradient check)",
                 threshold=MATCH_THRESHOLD)


# --- sigmoid -------------------------------------------------------------------------------------

def test_sigmoid_extremes_hidden(student):
    x = np.array([-1000.0, -50.0, -1.0, 0.0, 1.0, 50.0, 1000.0])
    with warnings.catch_warnings():
        warnings.simplefilter("error", RuntimeWarning)
        s = student.sigmoid(x)
    assert np.all(np.isfinite(s)), f"sigmoid({x}) should be finite everywhere, got {s}"
    expected = np.array([0.0, np.exp(-50.0) / (1 + np.exp(-50.0)), 1 / (1 + np.e), 0.5,
                         1 / (1 + np.exp(-1.0)), 1.0, 1.0])
    assert_close(s, expected, name="sigmoid(x)", threshold=1e-12)
    # Tiny values must keep their relative accuracy, not just be close to 0.
    assert_close(student.sigmoid(np.array([-50.0])), expected[1:2], name="sigmoid(-50)",
                 threshold=1e-12)


def test_sigmoid_shape_hidden(student, rng):
    x = 3.0 * rng.standard_normal((2, 3, 4))
    assert_close(student.sigmoid(x), 1.0 / (1.0 + np.exp(-x)), name="sigmoid(x) of a 3-d array",
                 threshold=1e-12)


def test_sigmoid_lstm_huge_preactivations_hidden(student, reference, rng):
    # Pre-activations in the thousands saturate every gate: an unstable sigmoid gives NaN
    # (exp overflows to inf, and inf / inf is NaN).
    N, T, D, H = 2, 3, 4, 3
    x = rng.standard_normal((N, T, D))
    h0 = rng.standard_normal((N, H))
    p = lstm_params(rng, D, H, scale=1000.0)
    with warnings.catch_warnings():
        warnings.simplefilter("error", RuntimeWarning)
        step = student.lstm_step_forward(x[:, 0], h0, rng.standard_normal((N, H)),
                                         p["Wx"], p["Wh"], p["b"])
        h, _ = student.lstm_forward(x, h0, p["Wx"], p["Wh"], p["b"])
    for name, value in (("next_h", step[0]), ("next_c", step[1]), ("h", h)):
        assert np.all(np.isfinite(value)), (
            f"lstm with pre-activations of about +-1000: {name} has non-finite values "
            f"{value[~np.isfinite(value)][:3]} (use a numerically stable sigmoid)"
        )
    assert_close(h, reference.lstm_forward(x, h0, p["Wx"], p["Wh"], p["b"])[0],
                 name="h with saturated gates", threshold=1e-9)


# --- vanilla RNN ----------------------------------------------------------------------------------

@pytest.mark.parametrize("shape", STEP_SHAPES, ids=shape_id)
def test_rnn_step_gradcheck_hidden(student, reference, rng, shape):
    N, D, H = shape
    args = {"x": rng.standard_normal((N, D)), "prev_h": rng.standard_normal((N, H)),
            **rnn_params(rng, D, H)}
    dnext_h = rng.standard_normal((N, H))
    next_h, cache = student.rnn_step_forward(*args.values())
    check_forward(next_h, reference.rnn_step_forward(*args.values())[0], "next_h")
    grads = dict(zip(args, student.rnn_step_backward(dnext_h, cache)))
    check_gradients(student.rnn_step_forward, args, grads, dout=dnext_h, output=0,
                    threshold=STEP_THRESHOLD)


@pytest.mark.parametrize("shape", STEP_SHAPES, ids=shape_id)
def test_rnn_step_matches_reference_hidden(student, reference, rng, shape):
    N, D, H = shape
    args = [rng.standard_normal((N, D)), rng.standard_normal((N, H)),
            *rnn_params(rng, D, H).values()]
    dnext_h = rng.standard_normal((N, H))
    next_h, cache = student.rnn_step_forward(*args)
    ref_h, ref_cache = reference.rnn_step_forward(*args)
    assert_close(next_h, ref_h, name="next_h", threshold=MATCH_THRESHOLD)
    assert_all_close(student.rnn_step_backward(dnext_h, cache),
                     reference.rnn_step_backward(dnext_h, ref_cache),
                     ["dx", "dprev_h", "dWx", "dWh", "db"])


@pytest.mark.parametrize("shape", SEQUENCE_SHAPES, ids=shape_id)
def test_rnn_seq_gradcheck_hidden(student, reference, rng, shape):
    N, T, D, H = shape
    args = {"x": rng.standard_normal((N, T, D)), "h0": rng.standard_normal((N, H)),
            **rnn_params(rng, D, H)}
    dh = rng.standard_normal((N, T, H))
    h, cache = student.rnn_forward(*args.values())
    check_forward(h, reference.rnn_forward(*args.values())[0], "h")
    grads = dict(zip(args, student.rnn_backward(dh, cache)))
    check_gradients(student.rnn_forward, args, grads, dout=dh, output=0,
                    threshold=SEQUENCE_THRESHOLD)


@pytest.mark.parametrize("shape", SEQUENCE_SHAPES, ids=shape_id)
def test_rnn_seq_matches_reference_hidden(student, reference, rng, shape):
    N, T, D, H = shape
    args = [rng.standard_normal((N, T, D)), rng.standard_normal((N, H)),
            *rnn_params(rng, D, H).values()]
    dh = rng.standard_normal((N, T, H))
    h, cache = student.rnn_forward(*args)
    ref_h, ref_cache = reference.rnn_forward(*args)
    assert_close(h, ref_h, name="h", threshold=MATCH_THRESHOLD)
    assert_all_close(student.rnn_backward(dh, cache), reference.rnn_backward(dh, ref_cache),
                     ["dx", "dh0", "dWx", "dWh", "db"])


def test_rnn_seq_last_step_only_hidden(student, reference, rng):
    # A loss on the last hidden state only (a many-to-one model): every earlier step gets its
    # gradient through the recurrence alone.
    N, T, D, H = 2, 5, 3, 4
    args = [rng.standard_normal((N, T, D)), rng.standard_normal((N, H)),
            *rnn_params(rng, D, H).values()]
    dh = np.zeros((N, T, H))
    dh[:, -1] = rng.standard_normal((N, H))
    _, cache = student.rnn_forward(*args)
    _, ref_cache = reference.rnn_forward(*args)
    assert_all_close(student.rnn_backward(dh, cache), reference.rnn_backward(dh, ref_cache),
                     ["dx (upstream gradient on the last step only)", "dh0", "dWx", "dWh", "db"])


# --- LSTM -----------------------------------------------------------------------------------------

@pytest.mark.parametrize("shape", STEP_SHAPES, ids=shape_id)
def test_lstm_step_gradcheck_hidden(student, reference, rng, shape):
    N, D, H = shape
    args = {"x": rng.standard_normal((N, D)), "prev_h": rng.standard_normal((N, H)),
            "prev_c": rng.standard_normal((N, H)), **lstm_params(rng, D, H)}
    dnext_h = rng.standard_normal((N, H))
    dnext_c = rng.standard_normal((N, H))
    next_h, next_c, cache = student.lstm_step_forward(*args.values())
    ref_h, ref_c, _ = reference.lstm_step_forward(*args.values())
    check_forward(next_c, ref_c, "next_c")
    check_forward(next_h, ref_h, "next_h")
    grads = dict(zip(args, student.lstm_step_backward(dnext_h, dnext_c, cache)))
    via_h, noise_h = numeric_gradients(student.lstm_step_forward, args, list(args),
                                       dout=dnext_h, output=0, return_noise=True)
    via_c, noise_c = numeric_gradients(student.lstm_step_forward, args, list(args),
                                       dout=dnext_c, output=1, return_noise=True)
    for name, analytic in grads.items():
        assert_close(analytic, via_h[name] + via_c[name], name=grad_name(name, args),
                     threshold=STEP_THRESHOLD, what="numerical",
                     noise=noise_h[name] + noise_c[name])


@pytest.mark.parametrize("which", ["dnext_h", "dnext_c"])
def test_lstm_step_gradcheck_one_output_hidden(student, reference, rng, which):
    # Only one output carries a gradient: catches a backward that ignores or mixes up one path.
    N, D, H = 2, 3, 4
    args = {"x": rng.standard_normal((N, D)), "prev_h": rng.standard_normal((N, H)),
            "prev_c": rng.standard_normal((N, H)), **lstm_params(rng, D, H)}
    up = rng.standard_normal((N, H))
    zero = np.zeros((N, H))
    next_h, next_c, cache = student.lstm_step_forward(*args.values())
    ref_h, ref_c, _ = reference.lstm_step_forward(*args.values())
    check_forward(next_c, ref_c, "next_c")
    check_forward(next_h, ref_h, "next_h")
    if which == "dnext_h":
        grads = student.lstm_step_backward(up, zero, cache)
    else:
        grads = student.lstm_step_backward(zero, up, cache)
    check_gradients(student.lstm_step_forward, args, dict(zip(args, grads)), dout=up,
                    output=0 if which == "dnext_h" else 1, threshold=STEP_THRESHOLD)


@pytest.mark.parametrize("shape", STEP_SHAPES, ids=shape_id)
def test_lstm_step_matches_reference_hidden(student, reference, rng, shape):
    N, D, H = shape
    args = [rng.standard_normal((N, D)), rng.standard_normal((N, H)),
            rng.standard_normal((N, H)), *lstm_params(rng, D, H).values()]
    dnext_h = rng.standard_normal((N, H))
    dnext_c = rng.standard_normal((N, H))
    next_h, next_c, cache = student.lstm_step_forward(*args)
    ref_h, ref_c, ref_cache = reference.lstm_step_forward(*args)
    assert_close(next_c, ref_c, name="next_c", threshold=MATCH_THRESHOLD)
    assert_close(next_h, ref_h, name="next_h", threshold=MATCH_THRESHOLD)
    assert_all_close(student.lstm_step_backward(dnext_h, dnext_c, cache),
                     reference.lstm_step_backward(dnext_h, dnext_c, ref_cache),
                     ["dx", "dprev_h", "dprev_c", "dWx", "dWh", "db"])


@pytest.mark.parametrize("shape", SEQUENCE_SHAPES, ids=shape_id)
def test_lstm_seq_gradcheck_hidden(student, reference, rng, shape):
    N, T, D, H = shape
    args = {"x": rng.standard_normal((N, T, D)), "h0": rng.standard_normal((N, H)),
            **lstm_params(rng, D, H)}
    dh = rng.standard_normal((N, T, H))
    h, cache = student.lstm_forward(*args.values())
    check_forward(h, reference.lstm_forward(*args.values())[0], "h")
    grads = dict(zip(args, student.lstm_backward(dh, cache)))
    check_gradients(student.lstm_forward, args, grads, dout=dh, output=0,
                    threshold=SEQUENCE_THRESHOLD)


@pytest.mark.parametrize("shape", SEQUENCE_SHAPES, ids=shape_id)
def test_lstm_seq_matches_reference_hidden(student, reference, rng, shape):
    N, T, D, H = shape
    args = [rng.standard_normal((N, T, D)), rng.standard_normal((N, H)),
            *lstm_params(rng, D, H).values()]
    dh = rng.standard_normal((N, T, H))
    h, cache = student.lstm_forward(*args)
    ref_h, ref_cache = reference.lstm_forward(*args)
    assert_close(h, ref_h, name="h", threshold=MATCH_THRESHOLD)
    assert_all_close(student.lstm_backward(dh, cache), reference.lstm_backward(dh, ref_cache),
                     ["dx", "dh0", "dWx", "dWh", "db"])


def test_lstm_seq_one_step_is_a_step_from_zero_cell_hidden(student, reference, rng):
    # With T = 1, lstm_forward is one lstm_step_forward from a zero cell state.
    N, D, H = 3, 2, 4
    x = rng.standard_normal((N, 1, D))
    h0 = rng.standard_normal((N, H))
    p = lstm_params(rng, D, H)
    h, _ = student.lstm_forward(x, h0, p["Wx"], p["Wh"], p["b"])
    expected, _, _ = reference.lstm_step_forward(x[:, 0], h0, np.zeros((N, H)),
                                                 p["Wx"], p["Wh"], p["b"])
    assert_close(h, expected[:, None, :], name="h for T = 1 (the initial cell state is zero)",
                 threshold=MATCH_THRESHOLD)


# --- time-distributed layers -------------------------------------------------------------------

@pytest.mark.parametrize("shape", [(2, 4, 5, 3), (1, 1, 3, 2), (3, 2, 1, 4)], ids=shape_id)
def test_embedding_gradcheck_hidden(student, reference, rng, shape):
    N, T, V, D = shape
    x = rng.integers(0, V, size=(N, T))
    W = rng.standard_normal((V, D))
    dout = rng.standard_normal((N, T, D))
    out, cache = student.word_embedding_forward(x, W)
    check_forward(out, reference.word_embedding_forward(x, W)[0], "out")
    dW = student.word_embedding_backward(dout, cache)
    check_gradients(student.word_embedding_forward, {"x": x, "W": W}, {"W": dW},
                    dout=dout, output=0, threshold=STEP_THRESHOLD)


def test_embedding_matches_reference_hidden(student, reference, rng):
    N, T, V, D = 4, 6, 5, 3  # 24 lookups in 5 words: many repeats
    x = rng.integers(0, V, size=(N, T))
    W = rng.standard_normal((V, D))
    dout = rng.standard_normal((N, T, D))
    out, cache = student.word_embedding_forward(x, W)
    ref_out, ref_cache = reference.word_embedding_forward(x, W)
    assert_close(out, ref_out, name="out", threshold=0.0)
    assert_close(student.word_embedding_backward(dout, cache),
                 reference.word_embedding_backward(dout, ref_cache),
                 name="dW (a repeated word must sum its gradients)", threshold=MATCH_THRESHOLD)


@pytest.mark.parametrize("shape", [(2, 3, 4, 5), (1, 1, 2, 3), (3, 2, 1, 1)], ids=shape_id)
def test_temporal_affine_gradcheck_hidden(student, reference, rng, shape):
    N, T, D, M = shape
    args = {"x": rng.standard_normal((N, T, D)), "w": rng.standard_normal((D, M)),
            "b": rng.standard_normal(M)}
    dout = rng.standard_normal((N, T, M))
    out, cache = student.temporal_affine_forward(*args.values())
    check_forward(out, reference.temporal_affine_forward(*args.values())[0], "out")
    grads = dict(zip(args, student.temporal_affine_backward(dout, cache)))
    check_gradients(student.temporal_affine_forward, args, grads, dout=dout, output=0,
                    threshold=STEP_THRESHOLD)


def test_temporal_affine_matches_reference_hidden(student, reference, rng):
    N, T, D, M = 3, 4, 5, 2
    args = [rng.standard_normal((N, T, D)), rng.standard_normal((D, M)), rng.standard_normal(M)]
    dout = rng.standard_normal((N, T, M))
    out, cache = student.temporal_affine_forward(*args)
    ref_out, ref_cache = reference.temporal_affine_forward(*args)
    assert_close(out, ref_out, name="out", threshold=MATCH_THRESHOLD)
    assert_all_close(student.temporal_affine_backward(dout, cache),
                     reference.temporal_affine_backward(dout, ref_cache), ["dx", "dw", "db"])


def softmax_mask(kind, rng, N, T):
    if kind == "all":
        return np.ones((N, T), dtype=bool)
    if kind == "lengths":  # sequences of different lengths, padded at the end
        lengths = np.arange(N) % T + 1
        return np.arange(T)[None, :] < lengths[:, None]
    if kind == "one_empty":  # the first sequence counts nowhere
        mask = rng.random((N, T)) < 0.6
        mask[0] = False
        mask[-1, 0] = True
        return mask
    raise ValueError(kind)


@pytest.mark.parametrize(
    "shape, kind",
    [((3, 4, 5), "all"), ((3, 4, 5), "lengths"), ((3, 4, 5), "one_empty"),
     ((1, 1, 3), "all"), ((2, 1, 4), "lengths"), ((2, 3, 4), "one_empty")],
    ids=lambda v: shape_id(v) if isinstance(v, tuple) else v,
)
def test_temporal_softmax_gradcheck_hidden(student, reference, rng, shape, kind):
    N, T, V = shape
    x = rng.standard_normal((N, T, V))
    y = rng.integers(0, V, size=(N, T))
    mask = softmax_mask(kind, rng, N, T)
    loss, dx = student.temporal_softmax_loss(x, y, mask)
    check_forward(loss, reference.temporal_softmax_loss(x, y, mask)[0], "loss")
    check_gradients(student.temporal_softmax_loss, {"x": x, "y": y, "mask": mask}, {"x": dx},
                    output=0, threshold=STEP_THRESHOLD)


@pytest.mark.parametrize("kind", ["all", "lengths", "one_empty"])
def test_temporal_softmax_matches_reference_hidden(student, reference, rng, kind):
    N, T, V = 4, 5, 6
    x = 2.0 * rng.standard_normal((N, T, V))
    y = rng.integers(0, V, size=(N, T))
    mask = softmax_mask(kind, rng, N, T)
    loss, dx = student.temporal_softmax_loss(x, y, mask)
    ref_loss, ref_dx = reference.temporal_softmax_loss(x, y, mask)
    assert_close(loss, ref_loss, name="loss", threshold=MATCH_THRESHOLD)
    assert_close(dx, ref_dx, name="dx", threshold=MATCH_THRESHOLD)


def test_temporal_softmax_ignores_masked_steps_hidden(student, reference, rng):
    N, T, V = 3, 4, 5
    x = rng.standard_normal((N, T, V))
    y = rng.integers(0, V, size=(N, T))
    mask = softmax_mask("lengths", rng, N, T)
    loss, dx = student.temporal_softmax_loss(x, y, mask)
    # Ignoring masked steps is easy for a loss that ignores everything: the values first.
    ref_loss, ref_dx = reference.temporal_softmax_loss(x, y, mask)
    assert_close(loss, ref_loss, name="loss", threshold=MATCH_THRESHOLD)
    assert_close(dx, ref_dx, name="dx", threshold=MATCH_THRESHOLD)
    # Whatever the scores and labels at masked steps, nothing changes.
    x2 = np.where(mask[:, :, None], x, 100.0 * rng.standard_normal((N, T, V)))
    y2 = np.where(mask, y, (y + 1) % V)
    loss2, dx2 = student.temporal_softmax_loss(x2, y2, mask)
    assert_close(loss2, loss, name="loss after changing only masked steps", threshold=1e-12)
    assert_close(dx2, dx, name="dx after changing only masked steps", threshold=1e-12)
    masked = ~mask
    assert np.all(np.asarray(dx)[masked] == 0.0), (
        "dx must be exactly zero at masked steps (mask[n, t] == False), got values up to "
        f"{np.abs(np.asarray(dx)[masked]).max():.3g}"
    )


def test_temporal_softmax_large_scores_hidden(student, reference, rng):
    # Scores of about +-1000: exp overflows unless the scores are shifted first.
    N, T, V = 2, 3, 4
    x = 1000.0 * rng.standard_normal((N, T, V))
    y = rng.integers(0, V, size=(N, T))
    mask = np.ones((N, T), dtype=bool)
    loss, dx = student.temporal_softmax_loss(x, y, mask)
    assert np.isfinite(loss), f"loss with scores of about +-1000 should be finite, got {loss}"
    ref_loss, ref_dx = reference.temporal_softmax_loss(x, y, mask)
    assert_close(loss, ref_loss, name="loss with scores of about +-1000", threshold=1e-9)
    assert_close(dx, ref_dx, name="dx with scores of about +-1000", threshold=1e-9)

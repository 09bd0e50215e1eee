"""Visible tests for hw4 (recurrent nets). Run them with `pytest assignments/hw4`.

Each function of rnn_layers.py is tested once here: forward passes against values computed
beforehand from a correct solution (on fixed inputs built by `wave`), backward passes by
numerical gradient checks. A gradient check differentiates your own forward pass, and a wrong
forward (all zeros, say) agrees with a backward that is wrong the same way, so each backward
test first checks its forward pass on the fixed inputs of the forward test. The hidden tests
check more shapes and edge cases the same way.
"""
import warnings

import numpy as np

from autograder.gradcheck import assert_close, check_gradients, numeric_gradients

# Relative error allowed for the gradient of one step, and of a whole sequence (where the
# errors of the numerical derivative add up over the steps).
STEP_THRESHOLD = 1e-7
SEQUENCE_THRESHOLD = 1e-6
# The expected values below are printed with 10 significant digits.
GOLDEN_THRESHOLD = 1e-6


def wave(shape, phase, scale=1.0):
    """A fixed, irregular-looking float64 array of the given shape (no random generator, so
    the expected values below never change with the numpy version)."""
    n = int(np.prod(shape))
    return scale * np.sin(0.9 * np.arange(1, n + 1) + phase).reshape(shape)


def lstm_params(rng, D, H, scale=0.5):
    """Random LSTM weights Wx (D, 4H), Wh (H, 4H) and b (4H,), small enough that no gate
    saturates (a saturated gate has a gradient close to zero and checks nothing)."""
    return {
        "Wx": scale * rng.standard_normal((D, 4 * H)),
        "Wh": scale * rng.standard_normal((H, 4 * H)),
        "b": 0.2 * rng.standard_normal(4 * H),
    }


# --- sigmoid -------------------------------------------------------------------------------------

def test_sigmoid_values(student):
    x = np.array([-50.0, -2.0, 0.0, 2.0, 50.0])
    expected = 1.0 / (1.0 + np.exp(-x))
    assert_close(student.sigmoid(x), expected, name="sigmoid(x)")
    # exp(-x) overflows for x = -1000: a stable sigmoid never computes it.
    with warnings.catch_warnings():
        warnings.simplefilter("error", RuntimeWarning)
        s = student.sigmoid(np.array([-1000.0, 1000.0]))
    assert_close(s, np.array([0.0, 1.0]), name="sigmoid([-1000, 1000])")


# --- vanilla RNN ----------------------------------------------------------------------------------

def check_rnn_step_golden(student):
    """The values of a correct solution on fixed inputs (the backward test checks them too)."""
    x = wave((2, 3), 0.1)
    prev_h = wave((2, 4), 0.2, 0.5)
    Wx = wave((3, 4), 0.3, 0.4)
    Wh = wave((4, 4), 0.4, 0.4)
    b = wave((4,), 0.5, 0.1)
    next_h, _ = student.rnn_step_forward(x, prev_h, Wx, Wh, b)
    expected = np.array([
        [0.2317251369, 0.1807247818, -0.0088356287, -0.1913294348],
        [-0.0592715329, 0.0489072662, 0.1196166791, 0.1001421443],
    ])
    assert_close(next_h, expected, name="next_h", threshold=GOLDEN_THRESHOLD)


def test_rnn_step_forward(student):
    check_rnn_step_golden(student)


def test_rnn_step_backward(student, rng):
    check_rnn_step_golden(student)  # the forward the gradient check differentiates
    N, D, H = 3, 4, 5
    args = {
        "x": rng.standard_normal((N, D)),
        "prev_h": rng.standard_normal((N, H)),
        "Wx": 0.4 * rng.standard_normal((D, H)),
        "Wh": 0.4 * rng.standard_normal((H, H)),
        "b": 0.2 * rng.standard_normal(H),
    }
    dnext_h = rng.standard_normal((N, H))
    _, cache = student.rnn_step_forward(*args.values())
    grads = dict(zip(args, student.rnn_step_backward(dnext_h, cache)))
    check_gradients(student.rnn_step_forward, args, grads, dout=dnext_h, output=0,
                    threshold=STEP_THRESHOLD)


def check_rnn_seq_golden(student):
    """The values of a correct solution on fixed inputs (the backward test checks them too)."""
    x = wave((2, 2, 3), 0.6)
    h0 = wave((2, 2), 0.7, 0.5)
    Wx = wave((3, 2), 0.8, 0.5)
    Wh = wave((2, 2), 0.9, 0.5)
    b = wave((2,), 1.0, 0.1)
    h, _ = student.rnn_forward(x, h0, Wx, Wh, b)
    expected = np.array([
        [[0.6128932058, -0.0635995167], [0.248330855, 0.3994679647]],
        [[-0.03043038, -0.1228435089], [0.5060540548, 0.4612187965]],
    ])
    assert_close(h, expected, name="h", threshold=GOLDEN_THRESHOLD)


def test_rnn_seq_forward(student):
    check_rnn_seq_golden(student)


def test_rnn_seq_backward(student, rng):
    check_rnn_seq_golden(student)  # the forward the gradient check differentiates
    N, T, D, H = 2, 4, 3, 5
    args = {
        "x": rng.standard_normal((N, T, D)),
        "h0": rng.standard_normal((N, H)),
        "Wx": 0.4 * rng.standard_normal((D, H)),
        "Wh": 0.4 * rng.standard_normal((H, H)),
        "b": 0.2 * rng.standard_normal(H),
    }
    dh = rng.standard_normal((N, T, H))
    _, cache = student.rnn_forward(*args.values())
    grads = dict(zip(args, student.rnn_backward(dh, cache)))
    check_gradients(student.rnn_forward, args, grads, dout=dh, output=0,
                    threshold=SEQUENCE_THRESHOLD)


# --- LSTM -----------------------------------------------------------------------------------------

def check_lstm_step_golden(student):
    """The values of a correct solution on fixed inputs (the backward test checks them too)."""
    x = wave((2, 3), 1.1)
    prev_h = wave((2, 2), 1.2, 0.5)
    prev_c = wave((2, 2), 1.3)
    Wx = wave((3, 8), 1.4, 0.5)
    Wh = wave((2, 8), 1.5, 0.5)
    b = wave((8,), 1.6, 0.2)
    next_h, next_c, _ = student.lstm_step_forward(x, prev_h, prev_c, Wx, Wh, b)
    expected_h = np.array([[0.2499309335, 0.2085513733], [-0.3358600346, -0.2328340252]])
    expected_c = np.array([[0.7881579926, 0.3608721733], [-0.8155178397, -0.8707825283]])
    assert_close(next_c, expected_c, name="next_c", threshold=GOLDEN_THRESHOLD)
    assert_close(next_h, expected_h, name="next_h", threshold=GOLDEN_THRESHOLD)


def test_lstm_step_forward(student):
    check_lstm_step_golden(student)


def test_lstm_step_gate_order(student):
    # With zero weights each gate is sigmoid (or tanh) of its own bias block, so the result
    # shows which block the code took for which gate: the order must be i, f, o, g.
    N, D, H = 1, 2, 1
    a_i, a_f, a_o, a_g = 0.5, -1.0, 2.0, 0.3
    b = np.array([a_i, a_f, a_o, a_g])
    prev_c = np.array([[0.8]])
    next_h, next_c, _ = student.lstm_step_forward(
        np.ones((N, D)), np.ones((N, H)), prev_c, np.zeros((D, 4 * H)), np.zeros((H, 4 * H)), b
    )

    def sig(a):
        return 1.0 / (1.0 + np.exp(-a))

    c = sig(a_f) * prev_c + sig(a_i) * np.tanh(a_g)
    assert_close(next_c, c, name="next_c (gates in the 4H axis must be ordered i, f, o, g)")
    assert_close(next_h, sig(a_o) * np.tanh(c),
                 name="next_h (gates in the 4H axis must be ordered i, f, o, g)")


def test_lstm_step_backward(student, rng):
    check_lstm_step_golden(student)  # the forward the gradient check differentiates
    N, D, H = 3, 4, 5
    args = {
        "x": rng.standard_normal((N, D)),
        "prev_h": rng.standard_normal((N, H)),
        "prev_c": rng.standard_normal((N, H)),
        **lstm_params(rng, D, H),
    }
    dnext_h = rng.standard_normal((N, H))
    dnext_c = rng.standard_normal((N, H))
    _, _, cache = student.lstm_step_forward(*args.values())
    grads = dict(zip(args, student.lstm_step_backward(dnext_h, dnext_c, cache)))
    # The loss reads both outputs: sum(next_h * dnext_h) + sum(next_c * dnext_c).
    via_h, noise_h = numeric_gradients(student.lstm_step_forward, args, list(args),
                                       dout=dnext_h, output=0, return_noise=True)
    via_c, noise_c = numeric_gradients(student.lstm_step_forward, args, list(args),
                                       dout=dnext_c, output=1, return_noise=True)
    for name, analytic in grads.items():
        assert_close(analytic, via_h[name] + via_c[name],
                     name=f"gradient d{name} (input '{name}', shape {args[name].shape})",
                     threshold=STEP_THRESHOLD, what="numerical",
                     noise=noise_h[name] + noise_c[name])


def check_lstm_seq_golden(student):
    """The values of a correct solution on fixed inputs (the backward test checks them too)."""
    x = wave((2, 2, 3), 1.7)
    h0 = wave((2, 2), 1.8, 0.5)
    Wx = wave((3, 8), 1.9, 0.5)
    Wh = wave((2, 8), 2.0, 0.5)
    b = wave((8,), 2.1, 0.2)
    h, _ = student.lstm_forward(x, h0, Wx, Wh, b)
    expected = np.array([
        [[0.14173959, 0.1853321336], [0.0574395752, 0.0144881035]],
        [[0.1369644022, 0.0774556787], [0.0071468901, 0.0539428736]],
    ])
    assert_close(h, expected, name="h", threshold=GOLDEN_THRESHOLD)


def test_lstm_seq_forward(student):
    check_lstm_seq_golden(student)


def test_lstm_seq_backward(student, rng):
    check_lstm_seq_golden(student)  # the forward the gradient check differentiates
    N, T, D, H = 2, 4, 3, 3
    args = {
        "x": rng.standard_normal((N, T, D)),
        "h0": rng.standard_normal((N, H)),
        **lstm_params(rng, D, H),
    }
    dh = rng.standard_normal((N, T, H))
    _, cache = student.lstm_forward(*args.values())
    grads = dict(zip(args, student.lstm_backward(dh, cache)))
    check_gradients(student.lstm_forward, args, grads, dout=dh, output=0,
                    threshold=SEQUENCE_THRESHOLD)


# --- time-distributed layers -------------------------------------------------------------------

def check_embedding_golden(student):
    """The values of a correct solution on fixed inputs (the backward test checks them too)."""
    W = np.arange(12.0).reshape(4, 3)
    x = np.array([[3, 0, 3], [1, 2, 0]])
    out, _ = student.word_embedding_forward(x, W)
    expected = np.array([
        [[9.0, 10.0, 11.0], [0.0, 1.0, 2.0], [9.0, 10.0, 11.0]],
        [[3.0, 4.0, 5.0], [6.0, 7.0, 8.0], [0.0, 1.0, 2.0]],
    ])
    assert_close(out, expected, name="out")


def test_embedding_forward(student):
    check_embedding_golden(student)


def test_embedding_backward(student, rng):
    check_embedding_golden(student)  # the forward the gradient check differentiates
    V, D = 5, 3
    # Word 2 appears three times and word 4 never: their rows of dW show whether repeated
    # words add up their gradients and whether unused words get zero.
    x = np.array([[2, 0, 2], [1, 3, 2]])
    W = rng.standard_normal((V, D))
    dout = rng.standard_normal((2, 3, D))
    _, cache = student.word_embedding_forward(x, W)
    dW = student.word_embedding_backward(dout, cache)
    check_gradients(student.word_embedding_forward, {"x": x, "W": W}, {"W": dW},
                    dout=dout, output=0, threshold=STEP_THRESHOLD)


def check_temporal_affine_golden(student):
    """The values of a correct solution on fixed inputs (the backward test checks them too)."""
    x = wave((2, 2, 3), 2.2)
    w = wave((3, 2), 2.3)
    b = wave((2,), 2.4)
    out, _ = student.temporal_affine_forward(x, w, b)
    expected = np.array([
        [[0.0801004014, -1.5934779469], [-0.0405833236, 0.3137010915]],
        [[-0.6074382603, -2.2928251844], [0.5382009784, 0.5129713641]],
    ])
    assert_close(out, expected, name="out", threshold=GOLDEN_THRESHOLD)


def test_temporal_affine_forward(student):
    check_temporal_affine_golden(student)


def test_temporal_affine_backward(student, rng):
    check_temporal_affine_golden(student)  # the forward the gradient check differentiates
    N, T, D, M = 2, 3, 4, 5
    args = {
        "x": rng.standard_normal((N, T, D)),
        "w": rng.standard_normal((D, M)),
        "b": rng.standard_normal(M),
    }
    dout = rng.standard_normal((N, T, M))
    _, cache = student.temporal_affine_forward(*args.values())
    grads = dict(zip(args, student.temporal_affine_backward(dout, cache)))
    check_gradients(student.temporal_affine_forward, args, grads, dout=dout, output=0,
                    threshold=STEP_THRESHOLD)


def check_temporal_softmax_loss_golden(student):
    """The values of a correct solution on fixed inputs (the backward test checks them too)."""
    x = wave((2, 3, 4), 2.5, 2.0)
    y = np.array([[0, 3, 1], [2, 2, 0]])
    mask = np.array([[True, True, False], [True, False, False]])
    loss, _ = student.temporal_softmax_loss(x, y, mask)
    assert_close(loss, 3.617159842532732, name="loss", threshold=GOLDEN_THRESHOLD)
    # Equal scores: each counted step costs log(V); 3 steps counted, batch of 2.
    loss, _ = student.temporal_softmax_loss(np.zeros((2, 3, 4)), y, mask)
    assert_close(loss, 3 * np.log(4) / 2,
                 name="loss for all-zero scores (sum over unmasked steps, mean over the batch)")


def test_temporal_softmax_loss_value(student):
    check_temporal_softmax_loss_golden(student)


def test_temporal_softmax_loss_backward(student, rng):
    check_temporal_softmax_loss_golden(student)  # the forward the gradient check differentiates
    N, T, V = 3, 4, 5
    x = rng.standard_normal((N, T, V))
    y = rng.integers(0, V, size=(N, T))
    mask = np.array([[True] * 4, [True, True, True, False], [True, False, False, False]])
    _, dx = student.temporal_softmax_loss(x, y, mask)
    check_gradients(student.temporal_softmax_loss, {"x": x, "y": y, "mask": mask}, {"x": dx},
                    output=0, threshold=STEP_THRESHOLD)

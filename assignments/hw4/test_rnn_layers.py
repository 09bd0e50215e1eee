"""Visible tests for hw4 (recurrent nets). Run them with `pytest assignments/hw4`.

Every function of rnn_layers.py is judged on its own, on fixed inputs built by `wave`:
- a forward pass against the values a correct solution gives on those inputs;
- a backward pass against the true gradients at those inputs, given the cache that your own
  forward returned. A wrong forward costs the forward's test; the backward's test then says
  so in a "note:" line, and whether your backward agrees with the numerical gradient of your
  own forward (a hint, not the verdict).
- the rule "a function leaves the arrays it is given unchanged" by tests of its own (part
  conventions, the test_inputs_* tests). Anywhere else a write into an input is shown as a
  warning and costs nothing.
The hidden tests check more shapes and edge cases the same way.
"""
import warnings

import numpy as np

from autograder.gradcheck import assert_close
from autograder.verdicts import check_inputs_rule, explain_with, forward_problem, judge_backward

# The expected values below are printed with 10 significant digits.
GOLDEN_THRESHOLD = 1e-6


def wave(shape, phase, scale=1.0):
    """A fixed, irregular-looking float64 array of the given shape (no random generator, so
    the expected values below never change with the numpy version)."""
    n = int(np.prod(shape))
    return scale * np.sin(0.9 * np.arange(1, n + 1) + phase).reshape(shape)


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

def rnn_step_inputs():
    """x (2, 3), prev_h (2, 4), Wx (3, 4), Wh (4, 4), b (4,): rnn_step_forward's arguments."""
    return {"x": wave((2, 3), 0.1), "prev_h": wave((2, 4), 0.2, 0.5), "Wx": wave((3, 4), 0.3, 0.4),
            "Wh": wave((4, 4), 0.4, 0.4), "b": wave((4,), 0.5, 0.1)}


RNN_STEP_NEXT_H = np.array([
    [0.2317251369, 0.1807247818, -0.008835628742, -0.1913294348],
    [-0.05927153295, 0.04890726617, 0.1196166791, 0.1001421443],
])
# The gradients of sum(next_h * wave((2, 4), 0.25)) at rnn_step_inputs().
RNN_STEP_GRADS = {
    "x": np.array([
        [0.8015917307, -0.7447047808, 0.5340488292],
        [-0.8108185537, 0.9007372008, -0.8046687778],
    ]),
    "prev_h": np.array([
        [0.8034235765, -0.7108052763, 0.4714176513, -0.1346902165],
        [-0.8459388199, 0.8955435663, -0.7602336406, 0.4679482649],
    ]),
    "Wx": np.array([
        [1.254423349, 1.035064124, 0.02252473101, -1.009740815],
        [1.806868059, 1.39886095, -0.07806516223, -1.497687233],
        [0.9919110446, 0.7040276976, -0.119576897, -0.8522138113],
    ]),
    "Wh": np.array([
        [0.8827437954, 0.6776246825, -0.04508746618, -0.7344138966],
        [0.7070056158, 0.5765797104, 0.00453943775, -0.5722926537],
        [-0.003780318572, 0.03919070854, 0.05073098569, 0.02292826],
        [-0.7117053832, -0.5278570402, 0.05853033506, 0.6007975237],
    ]),
    "b": np.array([-0.1320304832, 0.268079586, 0.4502954743, 0.2834742516]),
}


def test_rnn_step_forward(student):
    next_h, _ = student.rnn_step_forward(*rnn_step_inputs().values())
    assert_close(next_h, RNN_STEP_NEXT_H, name="next_h", threshold=GOLDEN_THRESHOLD)


def test_rnn_step_backward(student):
    judge_backward(student.rnn_step_forward, student.rnn_step_backward, rnn_step_inputs(),
                   wave((2, 4), 0.25), list(RNN_STEP_GRADS), expected=RNN_STEP_GRADS,
                   expected_out=RNN_STEP_NEXT_H, threshold=GOLDEN_THRESHOLD)


def rnn_seq_inputs():
    """x (2, 2, 3), h0 (2, 2), Wx (3, 2), Wh (2, 2), b (2,): rnn_forward's arguments."""
    return {"x": wave((2, 2, 3), 0.6), "h0": wave((2, 2), 0.7, 0.5), "Wx": wave((3, 2), 0.8, 0.5),
            "Wh": wave((2, 2), 0.9, 0.5), "b": wave((2,), 1.0, 0.1)}


RNN_SEQ_H = np.array([
    [[0.6128932058, -0.06359951672], [0.248330855, 0.3994679647]],
    [[-0.03043038005, -0.1228435089], [0.5060540548, 0.4612187965]],
])
# The gradients of sum(h * wave((2, 2, 2), 0.95)) at rnn_seq_inputs().
RNN_SEQ_GRADS = {
    "x": np.array([
        [[0.4018511891, -0.482349432, -0.1826695864], [-0.4402503945, 0.4747276043, 0.2245321823]],
        [[-0.2500880594, 0.2539219925, 0.1347048422], [0.4976922491, -0.4656867047, -0.2860822596]],
    ]),
    "h0": np.array([[0.3597555514, -0.5099005955], [-0.2286329205, 0.2723768491]]),
    "Wx": np.array([
        [0.4787515223, 1.225035108],
        [-0.1592424908, 0.273295179],
        [-0.6767249616, -0.8852690927],
    ]),
    "Wh": np.array([[-0.08745188417, -0.03420418531], [0.187375709, 0.4219734789]]),
    "b": np.array([0.2254357813, 0.3779878151]),
}


def test_rnn_seq_forward(student):
    h, _ = student.rnn_forward(*rnn_seq_inputs().values())
    assert_close(h, RNN_SEQ_H, name="h", threshold=GOLDEN_THRESHOLD)


def test_rnn_seq_backward(student):
    judge_backward(student.rnn_forward, student.rnn_backward, rnn_seq_inputs(),
                   wave((2, 2, 2), 0.95), list(RNN_SEQ_GRADS), expected=RNN_SEQ_GRADS,
                   expected_out=RNN_SEQ_H, threshold=GOLDEN_THRESHOLD)


# --- LSTM -----------------------------------------------------------------------------------------

def lstm_step_inputs():
    """x (2, 3), prev_h (2, 2), prev_c (2, 2), Wx (3, 8), Wh (2, 8), b (8,)."""
    return {"x": wave((2, 3), 1.1), "prev_h": wave((2, 2), 1.2, 0.5), "prev_c": wave((2, 2), 1.3),
            "Wx": wave((3, 8), 1.4, 0.5), "Wh": wave((2, 8), 1.5, 0.5), "b": wave((8,), 1.6, 0.2)}


LSTM_STEP_NEXT_H = np.array([[0.2499309335, 0.2085513733], [-0.3358600346, -0.2328340252]])
LSTM_STEP_NEXT_C = np.array([[0.7881579926, 0.3608721733], [-0.8155178397, -0.8707825283]])
# The gradients of sum(next_h * wave((2, 2), 1.25)) + sum(next_c * wave((2, 2), 1.35)).
LSTM_STEP_GRADS = {
    "x": np.array([
        [0.1081894226, 0.04870707906, -0.04892739147],
        [-0.4245186339, -0.1048480162, 0.2969497769],
    ]),
    "prev_h": np.array([[0.1054966914, 0.03858208881], [-0.4031009586, -0.05894839526]]),
    "prev_c": np.array([[0.3002990604, 0.01059849961], [-0.6948510074, -0.7600555247]]),
    "Wx": np.array([
        [-0.02608234016, -0.09299183991, -0.003744042724, -0.2479854786,
         -0.003716165782, -0.1472118904, 0.4560152582, 0.5986045939],
        [-0.06804542997, -0.06100042148, -0.05819057853, -0.1566655485,
         -0.04575048274, -0.09547389085, 0.1946040244, 0.3742394075],
        [-0.05851309497, 0.01715489979, -0.06859964462, 0.05321574542,
         -0.05316174646, 0.02851684585, -0.2140796554, -0.1333427015],
    ]),
    "Wh": np.array([
        [0.009345804493, -0.0311664355, 0.01853649598, -0.08524600026,
         0.01413486063, -0.0497267458, 0.1899535269, 0.2071685447],
        [-0.07190085205, -0.04894028998, -0.06562493459, -0.1236506615,
         -0.0514233065, -0.07622655014, 0.1206093711, 0.2939872096],
    ]),
    "b": np.array([0.3202378809, 0.1060773645, 0.3221219895, 0.2486237056,
                   0.2512493231, 0.161690434, 0.07595039926, -0.5777281297]),
}


def test_lstm_step_forward(student):
    next_h, next_c, _ = student.lstm_step_forward(*lstm_step_inputs().values())
    assert_close(next_c, LSTM_STEP_NEXT_C, name="next_c", threshold=GOLDEN_THRESHOLD)
    assert_close(next_h, LSTM_STEP_NEXT_H, name="next_h", threshold=GOLDEN_THRESHOLD)


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


def test_lstm_step_backward(student):
    # The loss reads both outputs, so both upstream gradients are given.
    judge_backward(student.lstm_step_forward, student.lstm_step_backward, lstm_step_inputs(),
                   (wave((2, 2), 1.25), wave((2, 2), 1.35)), list(LSTM_STEP_GRADS),
                   expected=LSTM_STEP_GRADS, expected_out=(LSTM_STEP_NEXT_H, LSTM_STEP_NEXT_C),
                   outputs=2, threshold=GOLDEN_THRESHOLD)


def lstm_seq_inputs():
    """x (2, 2, 3), h0 (2, 2), Wx (3, 8), Wh (2, 8), b (8,): lstm_forward's arguments."""
    return {"x": wave((2, 2, 3), 1.7), "h0": wave((2, 2), 1.8, 0.5), "Wx": wave((3, 8), 1.9, 0.5),
            "Wh": wave((2, 8), 2.0, 0.5), "b": wave((8,), 2.1, 0.2)}


LSTM_SEQ_H = np.array([
    [[0.14173959, 0.1853321336], [0.05743957519, 0.01448810349]],
    [[0.1369644022, 0.07745567873], [0.007146890101, 0.05394287357]],
])
# The gradients of sum(h * wave((2, 2, 2), 1.75)) at lstm_seq_inputs().
LSTM_SEQ_GRADS = {
    "x": np.array([
        [[-0.06083574438, 0.0682716454, 0.1439020348], [-0.0790879783, -0.01911213004, 0.05583419943]],
        [[0.09703779046, -0.05980029747, -0.1697969696], [0.09315011503, 0.007189117804, -0.0844030965]],
    ]),
    "h0": np.array([[-0.04728877692, 0.08080728795], [0.08160526576, -0.07628377034]]),
    "Wx": np.array([
        [0.01172182462, -0.04170238543, 0.02258464516, 0.02459490177,
         0.03675625764, -0.005160642733, 0.04595491026, 0.1672157794],
        [0.04770246514, 0.03574958217, -0.01832180751, -0.00149217736,
         -0.01227717011, 0.01215638632, -0.05787073842, 0.09088703597],
        [0.04758283107, 0.08614697871, -0.04536268152, -0.02645000641,
         -0.05201948029, 0.02027370456, -0.117900966, -0.05422320428],
    ]),
    "Wh": np.array([
        [-0.01969372213, -0.02634800007, -0.004580591662, -0.004329519673,
         0.003294587706, -0.01788432041, -0.07579006141, -0.1460565564],
        [-0.0013567888, 0.009796230628, -0.00886463808, -0.006212699747,
         -0.01319933496, -0.001050873971, -0.04772955037, -0.07259758511],
    ]),
    "b": np.array([0.02436228627, 0.01863183017, -0.03136383984, -0.03036273721,
                   0.02182577454, -0.002460617895, 0.03940959446, 0.03800087689]),
}


def test_lstm_seq_forward(student):
    h, _ = student.lstm_forward(*lstm_seq_inputs().values())
    assert_close(h, LSTM_SEQ_H, name="h", threshold=GOLDEN_THRESHOLD)


def test_lstm_seq_backward(student):
    judge_backward(student.lstm_forward, student.lstm_backward, lstm_seq_inputs(),
                   wave((2, 2, 2), 1.75), list(LSTM_SEQ_GRADS), expected=LSTM_SEQ_GRADS,
                   expected_out=LSTM_SEQ_H, threshold=GOLDEN_THRESHOLD)


# --- time-distributed layers -------------------------------------------------------------------

def test_embedding_forward(student):
    W = np.arange(12.0).reshape(4, 3)
    x = np.array([[3, 0, 3], [1, 2, 0]])
    out, _ = student.word_embedding_forward(x, W)
    expected = np.array([
        [[9.0, 10.0, 11.0], [0.0, 1.0, 2.0], [9.0, 10.0, 11.0]],
        [[3.0, 4.0, 5.0], [6.0, 7.0, 8.0], [0.0, 1.0, 2.0]],
    ])
    assert_close(out, expected, name="out")


def test_embedding_backward(student):
    # Word 2 appears three times and word 4 never: their rows of dW show whether repeated
    # words add up their gradients and whether unused words get zero.
    x = np.array([[2, 0, 2], [1, 3, 2]])
    W = np.arange(15.0).reshape(5, 3)
    out = np.array([
        [[6.0, 7.0, 8.0], [0.0, 1.0, 2.0], [6.0, 7.0, 8.0]],
        [[3.0, 4.0, 5.0], [9.0, 10.0, 11.0], [6.0, 7.0, 8.0]],
    ])
    dout = np.arange(18.0).reshape(2, 3, 3)
    dW = np.array([
        [3.0, 4.0, 5.0],                                     # dout[0, 1]
        [9.0, 10.0, 11.0],                                   # dout[1, 0]
        [0.0 + 6.0 + 15.0, 1.0 + 7.0 + 16.0, 2.0 + 8.0 + 17.0],  # dout[0, 0] + dout[0, 2] + dout[1, 2]
        [12.0, 13.0, 14.0],                                  # dout[1, 1]
        [0.0, 0.0, 0.0],                                     # word 4 is not used
    ])
    judge_backward(student.word_embedding_forward, student.word_embedding_backward,
                   {"x": x, "W": W}, dout, ["W"], expected={"W": dW}, expected_out=out)


def temporal_affine_inputs():
    """x (2, 2, 3), w (3, 2), b (2,)."""
    return {"x": wave((2, 2, 3), 2.2), "w": wave((3, 2), 2.3), "b": wave((2,), 2.4)}


TEMPORAL_AFFINE_OUT = np.array([
    [[0.08010040142, -1.593477947], [-0.04058332358, 0.3137010915]],
    [[-0.6074382603, -2.292825184], [0.5382009784, 0.5129713641]],
])
# The gradients of sum(out * wave((2, 2, 2), 2.45)) at temporal_affine_inputs().
TEMPORAL_AFFINE_GRADS = {
    "x": np.array([
        [[0.7444270319, 0.5330189594, -0.98663308], [0.2419590169, 0.9549562125, -0.6758951205]],
        [[-0.8543742228, -0.9669550631, 1.293762654], [0.1462722093, -0.5155677809, 0.08800395029]],
    ]),
    "w": np.array([
        [0.2943554549, 1.087298488],
        [-0.4756979093, 0.7089701148],
        [-0.8857525796, -0.2058927071],
    ]),
    "b": np.array([0.1305414688, -0.3493978724]),
}


def test_temporal_affine_forward(student):
    out, _ = student.temporal_affine_forward(*temporal_affine_inputs().values())
    assert_close(out, TEMPORAL_AFFINE_OUT, name="out", threshold=GOLDEN_THRESHOLD)


def test_temporal_affine_backward(student):
    judge_backward(student.temporal_affine_forward, student.temporal_affine_backward,
                   temporal_affine_inputs(), wave((2, 2, 2), 2.45), list(TEMPORAL_AFFINE_GRADS),
                   expected=TEMPORAL_AFFINE_GRADS, expected_out=TEMPORAL_AFFINE_OUT,
                   threshold=GOLDEN_THRESHOLD)


def temporal_softmax_inputs():
    """Scores x (2, 3, 4), labels y (2, 3) and a mask (2, 3) that counts 3 of the 6 steps."""
    return (wave((2, 3, 4), 2.5, 2.0), np.array([[0, 3, 1], [2, 2, 0]]),
            np.array([[True, True, False], [True, False, False]]))


TEMPORAL_SOFTMAX_LOSS = 3.617159842532732
TEMPORAL_SOFTMAX_DX = np.array([
    [
        [-0.3154787211, 0.04923058715, 0.05255907013, 0.2136890638],
        [0.1248925796, 0.2474883452, 0.108127944, -0.4805088688],
        [0.0, 0.0, 0.0, 0.0],  # masked
    ],
    [
        [0.3282055881, 0.1397675435, -0.4749272834, 0.00695415188],
        [0.0, 0.0, 0.0, 0.0],  # masked
        [0.0, 0.0, 0.0, 0.0],  # masked
    ],
])


def test_temporal_softmax_loss_value(student):
    x, y, mask = temporal_softmax_inputs()
    loss, _ = student.temporal_softmax_loss(x, y, mask)
    assert_close(loss, TEMPORAL_SOFTMAX_LOSS, name="loss", threshold=GOLDEN_THRESHOLD)
    # Equal scores: each counted step costs log(V); 3 steps counted, batch of 2.
    loss, _ = student.temporal_softmax_loss(np.zeros((2, 3, 4)), y, mask)
    assert_close(loss, 3 * np.log(4) / 2,
                 name="loss for all-zero scores (sum over unmasked steps, mean over the batch)")


def test_temporal_softmax_loss_gradient(student):
    # dx is judged on its own: a wrong loss value costs the test above, and is only noted here.
    x, y, mask = temporal_softmax_inputs()
    loss, dx = student.temporal_softmax_loss(x, y, mask)
    problem = forward_problem(loss, TEMPORAL_SOFTMAX_LOSS, "loss", threshold=GOLDEN_THRESHOLD)
    with explain_with(problem and f"note: {problem} (the loss value is graded by its own test)"):
        assert_close(dx, TEMPORAL_SOFTMAX_DX, name="dx", threshold=GOLDEN_THRESHOLD)


# --- conventions: a function leaves the arrays it is given unchanged ---------------------------
# One test per function that is easy to get wrong this way. Each calls the function twice and
# checks that neither call wrote into its inputs (and that the function computed something);
# the values themselves are graded by the function's own tests.

def test_inputs_rnn_step_backward(student):
    # A classic: dnext_h *= 1 - next_h ** 2 writes into the caller's upstream gradient.
    calls = []
    for phase in (0.0, 1.0):
        _, cache = student.rnn_step_forward(wave((2, 2), phase), wave((2, 2), phase + 0.1, 0.5),
                                            wave((2, 2), 0.3, 0.5), wave((2, 2), 0.4, 0.5),
                                            wave((2,), 0.5, 0.1))
        calls.append((wave((2, 2), phase + 0.2), cache))
    check_inputs_rule(student.rnn_step_backward, *calls)


def test_inputs_lstm_step_backward(student):
    # A classic: dnext_c += dnext_h * o * (1 - tanh(c) ** 2) writes into the caller's dnext_c.
    calls = []
    for phase in (0.0, 1.0):
        _, _, cache = student.lstm_step_forward(
            wave((2, 2), phase), wave((2, 2), phase + 0.1, 0.5), wave((2, 2), phase + 0.2),
            wave((2, 8), 0.3, 0.5), wave((2, 8), 0.4, 0.5), wave((8,), 0.5, 0.2))
        calls.append((wave((2, 2), phase + 0.3), wave((2, 2), phase + 0.4), cache))
    check_inputs_rule(student.lstm_step_backward, *calls)


def test_inputs_rnn_backward(student):
    # A classic: dh[:, t] += carry writes into the caller's dh.
    calls = []
    for phase in (0.0, 1.0):
        _, cache = student.rnn_forward(wave((2, 3, 2), phase), wave((2, 2), phase + 0.1, 0.5),
                                       wave((2, 2), 0.3, 0.5), wave((2, 2), 0.4, 0.5), wave((2,), 0.5, 0.1))
        calls.append((wave((2, 3, 2), phase + 0.2), cache))
    check_inputs_rule(student.rnn_backward, *calls)


def test_inputs_lstm_backward(student):
    calls = []
    for phase in (0.0, 1.0):
        _, cache = student.lstm_forward(wave((2, 3, 2), phase), wave((2, 2), phase + 0.1, 0.5),
                                        wave((2, 8), 0.3, 0.5), wave((2, 8), 0.4, 0.5), wave((8,), 0.5, 0.2))
        calls.append((wave((2, 3, 2), phase + 0.2), cache))
    check_inputs_rule(student.lstm_backward, *calls)


def test_inputs_temporal_softmax_loss(student):
    # A classic: x -= x.max(axis=2, keepdims=True) writes into the caller's scores.
    y = np.array([[0, 3, 1], [2, 2, 0]])
    mask = np.array([[True, True, False], [True, True, True]])
    check_inputs_rule(student.temporal_softmax_loss,
                      (wave((2, 3, 4), 0.0, 2.0), y, mask), (wave((2, 3, 4), 1.0, 2.0), y, mask))

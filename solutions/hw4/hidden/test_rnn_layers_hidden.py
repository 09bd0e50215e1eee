"""Hidden tests for hw4 (recurrent nets): several shapes, including the edges (one time step,
a batch of one, a hidden size of one), masks in the temporal loss, and saturated gates.

Every function is judged on its own, against the reference at the same inputs:
- a forward against the reference's forward;
- a backward (judge_backward) against the reference's analytic gradient, given the cache the
  student's own forward returned, never through a numerical gradient of the student's forward;
- a sequence (rnn_forward, lstm_backward, ...) against the reference's sequence. The student's
  sequence functions call their own step functions, so a wrong step also makes the sequence
  wrong: that cascade is the student's code, and a failing sequence test then says so in a
  note (which step function is wrong, and how).
The rule "inputs left unchanged" is graded by the visible test_inputs_* tests only.
"""
import contextlib
import warnings

import numpy as np
import pytest

from autograder.gradcheck import assert_close
from autograder.verdicts import explain_with, forward_problem, judge_backward

# Forward values are compared with the reference up to rounding differences only.
MATCH_THRESHOLD = 1e-9
# Gradients: the student's analytic gradient against the reference's.
GRAD_THRESHOLD = 1e-7
SIGMOID_THRESHOLD = 1e-10

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
    """Wx (D, 4H), Wh (H, 4H), b (4H,); at scale 0.5 no gate saturates."""
    return {
        "Wx": scale * rng.standard_normal((D, 4 * H)),
        "Wh": scale * rng.standard_normal((H, 4 * H)),
        "b": 0.2 * rng.standard_normal(4 * H),
    }


def step_args(rng, kind, N, D, H):
    """The arguments of rnn_step_forward or lstm_step_forward, by name, in order."""
    args = {"x": rng.standard_normal((N, D)), "prev_h": rng.standard_normal((N, H))}
    if kind == "lstm":
        args["prev_c"] = rng.standard_normal((N, H))
    return {**args, **(lstm_params(rng, D, H) if kind == "lstm" else rnn_params(rng, D, H))}


def seq_args(rng, kind, N, T, D, H):
    """The arguments of rnn_forward or lstm_forward, by name, in order."""
    params = lstm_params(rng, D, H) if kind == "lstm" else rnn_params(rng, D, H)
    return {"x": rng.standard_normal((N, T, D)), "h0": rng.standard_normal((N, H)), **params}


def pair(module, kind, step):
    """(forward, backward) of `module` for kind "rnn" or "lstm", one step or a sequence."""
    name = f"{kind}_step" if step else kind
    return getattr(module, f"{name}_forward"), getattr(module, f"{name}_backward")


# --- notes: what is wrong with an input that feeds a sequence ---------------------------------------

def first_line(exc):
    return (str(exc).splitlines() or [type(exc).__name__])[0]


def step_problem(student, reference, kind, args, backward):
    """What is wrong with the student's step functions at the first step of the sequence
    whose arguments are `args`: (the step function, one line), or None when nothing is. The
    forward first, then, when `backward`, the backward given the student's own step cache."""
    x, h0, Wx, Wh, b = args.values()
    one = {"x": x[:, 0], "prev_h": h0}
    if kind == "lstm":
        one["prev_c"] = np.zeros_like(h0)  # lstm_forward starts from a zero cell state
    one.update(Wx=Wx, Wh=Wh, b=b)
    fwd, bwd = pair(student, kind, step=True)
    ref_fwd, ref_bwd = pair(reference, kind, step=True)
    outputs = ["next_h", "next_c"] if kind == "lstm" else ["next_h"]
    name = f"{kind}_step_forward"
    try:
        got, want = fwd(*one.values()), ref_fwd(*one.values())
        for k, output in enumerate(outputs):
            problem = forward_problem(got[k], want[k], f"{name} {output}", threshold=MATCH_THRESHOLD)
            if problem:
                return name, problem
        if backward:
            name = f"{kind}_step_backward"
            douts = tuple(np.ones_like(h0) for _ in outputs)
            judge_backward(fwd, bwd, one, douts if len(outputs) > 1 else douts[0], list(one),
                           reference=(ref_fwd, ref_bwd), outputs=len(outputs), threshold=GRAD_THRESHOLD)
    except Exception as exc:  # noqa: BLE001 - any failure of the step is worth naming
        return name, first_line(exc)
    return None


@contextlib.contextmanager
def blame_steps(student, reference, kind, args, backward=False):
    """On a failure inside, add a note when the student's step functions (which their
    sequence functions run at every step) are wrong too. Computed only on a failure."""
    __tracebackhide__ = True
    try:
        yield
    except AssertionError:
        found = step_problem(student, reference, kind, args, backward)
        note = None
        if found:
            step, problem = found
            if step.endswith("backward"):
                runs = f"{kind}_backward runs {step} at every time step"
            elif backward:
                runs = (f"{kind}_forward runs {step} at every time step, and {kind}_backward "
                        "works from what it cached")
            else:
                runs = f"{kind}_forward runs {step} at every time step"
            note = f"note: {problem}. {runs}, so fix {step} first (the {kind}_step tests grade it)."
        with explain_with(note):
            raise


# --- sigmoid -------------------------------------------------------------------------------------

def test_sigmoid_extremes_hidden(student):
    x = np.array([-1000.0, -50.0, -1.0, 0.0, 1.0, 50.0, 1000.0])
    with warnings.catch_warnings():
        warnings.simplefilter("error", RuntimeWarning)
        s = student.sigmoid(x)
    assert np.all(np.isfinite(s)), f"sigmoid({x}) should be finite everywhere, got {s}"
    expected = np.array([0.0, np.exp(-50.0) / (1 + np.exp(-50.0)), 1 / (1 + np.e), 0.5,
                         1 / (1 + np.exp(-1.0)), 1.0, 1.0])
    assert_close(s, expected, name="sigmoid(x)", threshold=SIGMOID_THRESHOLD)


def test_sigmoid_shape_hidden(student, rng):
    x = 3.0 * rng.standard_normal((2, 3, 4))
    assert_close(student.sigmoid(x), 1.0 / (1.0 + np.exp(-x)), name="sigmoid(x) of a 3-d array",
                 threshold=SIGMOID_THRESHOLD)


# --- vanilla RNN and LSTM: one step -------------------------------------------------------------------

@pytest.mark.parametrize("shape", STEP_SHAPES, ids=shape_id)
def test_rnn_step_forward_hidden(student, reference, rng, shape):
    args = step_args(rng, "rnn", *shape)
    next_h, _ = student.rnn_step_forward(*args.values())
    assert_close(next_h, reference.rnn_step_forward(*args.values())[0],
                 name=f"next_h for N, D, H = {shape}", threshold=MATCH_THRESHOLD)


@pytest.mark.parametrize("shape", STEP_SHAPES, ids=shape_id)
def test_rnn_step_backward_hidden(student, reference, rng, shape):
    N, D, H = shape
    args = step_args(rng, "rnn", N, D, H)
    judge_backward(student.rnn_step_forward, student.rnn_step_backward, args,
                   rng.standard_normal((N, H)), list(args), reference=pair(reference, "rnn", True),
                   threshold=GRAD_THRESHOLD, what=f"for N, D, H = {shape}")


@pytest.mark.parametrize("shape", STEP_SHAPES, ids=shape_id)
def test_lstm_step_forward_hidden(student, reference, rng, shape):
    args = step_args(rng, "lstm", *shape)
    next_h, next_c, _ = student.lstm_step_forward(*args.values())
    ref_h, ref_c, _ = reference.lstm_step_forward(*args.values())
    assert_close(next_c, ref_c, name=f"next_c for N, D, H = {shape}", threshold=MATCH_THRESHOLD)
    assert_close(next_h, ref_h, name=f"next_h for N, D, H = {shape}", threshold=MATCH_THRESHOLD)


@pytest.mark.parametrize("shape", STEP_SHAPES, ids=shape_id)
def test_lstm_step_backward_hidden(student, reference, rng, shape):
    N, D, H = shape
    args = step_args(rng, "lstm", N, D, H)
    douts = (rng.standard_normal((N, H)), rng.standard_normal((N, H)))
    judge_backward(student.lstm_step_forward, student.lstm_step_backward, args, douts, list(args),
                   reference=pair(reference, "lstm", True), outputs=2, threshold=GRAD_THRESHOLD,
                   what=f"for N, D, H = {shape}")


@pytest.mark.parametrize("which", ["dnext_h", "dnext_c"])
def test_lstm_step_backward_one_output_hidden(student, reference, rng, which):
    # Only one output carries a gradient: catches a backward that ignores or mixes up a path.
    N, D, H = 2, 3, 4
    args = step_args(rng, "lstm", N, D, H)
    up, zero = rng.standard_normal((N, H)), np.zeros((N, H))
    douts = (up, zero) if which == "dnext_h" else (zero, up)
    judge_backward(student.lstm_step_forward, student.lstm_step_backward, args, douts, list(args),
                   reference=pair(reference, "lstm", True), outputs=2, threshold=GRAD_THRESHOLD,
                   what=f"with only {which} nonzero")


def test_lstm_step_saturated_gates_hidden(student, reference, rng):
    # Pre-activations in the thousands saturate every gate: a sigmoid that overflows gives
    # NaN (inf / inf) instead of 0 or 1.
    N, D, H = 2, 4, 3
    args = {"x": rng.standard_normal((N, D)), "prev_h": rng.standard_normal((N, H)),
            "prev_c": rng.standard_normal((N, H)), **lstm_params(rng, D, H, scale=1000.0)}
    next_h, next_c, _ = student.lstm_step_forward(*args.values())
    ref_h, ref_c, _ = reference.lstm_step_forward(*args.values())
    assert_close(next_c, ref_c, name="next_c with saturated gates (pre-activations of about +-1000)",
                 threshold=MATCH_THRESHOLD)
    assert_close(next_h, ref_h, name="next_h with saturated gates (pre-activations of about +-1000)",
                 threshold=MATCH_THRESHOLD)


# --- vanilla RNN and LSTM: sequences -------------------------------------------------------------------

def check_seq_forward(student, reference, rng, kind, shape):
    args = seq_args(rng, kind, *shape)
    forward, _ = pair(student, kind, step=False)
    ref_forward, _ = pair(reference, kind, step=False)
    h, _ = forward(*args.values())
    with blame_steps(student, reference, kind, args):
        assert_close(h, ref_forward(*args.values())[0], name=f"h for N, T, D, H = {shape}",
                     threshold=MATCH_THRESHOLD)


def check_seq_backward(student, reference, rng, kind, shape, last_step_only=False):
    N, T, D, H = shape
    args = seq_args(rng, kind, N, T, D, H)
    dh = rng.standard_normal((N, T, H))
    what = f"for N, T, D, H = {shape}"
    if last_step_only:
        # A loss on the last hidden state only (a many-to-one model): every earlier step gets
        # its gradient through the recurrence alone.
        dh[:, :-1] = 0.0
        what = "with an upstream gradient on the last step only"
    with blame_steps(student, reference, kind, args, backward=True):
        judge_backward(*pair(student, kind, step=False), args, dh, list(args),
                       reference=pair(reference, kind, step=False), threshold=GRAD_THRESHOLD,
                       what=what)


@pytest.mark.parametrize("shape", SEQUENCE_SHAPES, ids=shape_id)
def test_rnn_seq_forward_hidden(student, reference, rng, shape):
    check_seq_forward(student, reference, rng, "rnn", shape)


@pytest.mark.parametrize("shape", SEQUENCE_SHAPES, ids=shape_id)
def test_rnn_seq_backward_hidden(student, reference, rng, shape):
    check_seq_backward(student, reference, rng, "rnn", shape)


def test_rnn_seq_last_step_only_hidden(student, reference, rng):
    check_seq_backward(student, reference, rng, "rnn", (2, 5, 3, 4), last_step_only=True)


@pytest.mark.parametrize("shape", SEQUENCE_SHAPES, ids=shape_id)
def test_lstm_seq_forward_hidden(student, reference, rng, shape):
    check_seq_forward(student, reference, rng, "lstm", shape)


@pytest.mark.parametrize("shape", SEQUENCE_SHAPES, ids=shape_id)
def test_lstm_seq_backward_hidden(student, reference, rng, shape):
    check_seq_backward(student, reference, rng, "lstm", shape)


def test_lstm_seq_last_step_only_hidden(student, reference, rng):
    check_seq_backward(student, reference, rng, "lstm", (2, 5, 3, 4), last_step_only=True)


def test_lstm_seq_one_step_is_a_step_from_zero_cell_hidden(student, reference, rng):
    # With T = 1, lstm_forward is one lstm_step_forward from a zero cell state.
    N, D, H = 3, 2, 4
    args = seq_args(rng, "lstm", N, 1, D, H)
    h, _ = student.lstm_forward(*args.values())
    x, h0, Wx, Wh, b = args.values()
    expected, _, _ = reference.lstm_step_forward(x[:, 0], h0, np.zeros((N, H)), Wx, Wh, b)
    with blame_steps(student, reference, "lstm", args):
        assert_close(h, expected[:, None, :], name="h for T = 1 (the initial cell state is zero)",
                     threshold=MATCH_THRESHOLD)


def test_lstm_seq_saturated_gates_hidden(student, reference, rng):
    N, T, D, H = 2, 3, 4, 3
    args = {"x": rng.standard_normal((N, T, D)), "h0": rng.standard_normal((N, H)),
            **lstm_params(rng, D, H, scale=1000.0)}
    h, _ = student.lstm_forward(*args.values())
    with blame_steps(student, reference, "lstm", args):
        assert_close(h, reference.lstm_forward(*args.values())[0],
                     name="h with saturated gates (pre-activations of about +-1000)",
                     threshold=MATCH_THRESHOLD)


# --- time-distributed layers -------------------------------------------------------------------

EMBEDDING_SHAPES = [(2, 4, 5, 3), (1, 1, 3, 2), (3, 2, 1, 4), (4, 6, 5, 3)]  # (N, T, V, D)


@pytest.mark.parametrize("shape", EMBEDDING_SHAPES, ids=shape_id)
def test_embedding_forward_hidden(student, reference, rng, shape):
    N, T, V, D = shape
    x = rng.integers(0, V, size=(N, T))
    W = rng.standard_normal((V, D))
    out, _ = student.word_embedding_forward(x, W)
    assert_close(out, reference.word_embedding_forward(x, W)[0], name=f"out for N, T, V, D = {shape}",
                 threshold=MATCH_THRESHOLD)


@pytest.mark.parametrize("shape", EMBEDDING_SHAPES, ids=shape_id)
def test_embedding_backward_hidden(student, reference, rng, shape):
    # The last shape has 24 lookups in 5 words: many repeats, whose gradients must add up.
    N, T, V, D = shape
    args = {"x": rng.integers(0, V, size=(N, T)), "W": rng.standard_normal((V, D))}
    judge_backward(student.word_embedding_forward, student.word_embedding_backward, args,
                   rng.standard_normal((N, T, D)), ["W"],
                   reference=(reference.word_embedding_forward, reference.word_embedding_backward),
                   threshold=GRAD_THRESHOLD,
                   what=f"for N, T, V, D = {shape} (a repeated word sums its gradients)")


TEMPORAL_AFFINE_SHAPES = [(2, 3, 4, 5), (1, 1, 2, 3), (3, 2, 1, 1), (3, 4, 5, 2)]  # (N, T, D, M)


def temporal_affine_args(rng, N, T, D, M):
    return {"x": rng.standard_normal((N, T, D)), "w": rng.standard_normal((D, M)),
            "b": rng.standard_normal(M)}


@pytest.mark.parametrize("shape", TEMPORAL_AFFINE_SHAPES, ids=shape_id)
def test_temporal_affine_forward_hidden(student, reference, rng, shape):
    args = temporal_affine_args(rng, *shape)
    out, _ = student.temporal_affine_forward(*args.values())
    assert_close(out, reference.temporal_affine_forward(*args.values())[0],
                 name=f"out for N, T, D, M = {shape}", threshold=MATCH_THRESHOLD)


@pytest.mark.parametrize("shape", TEMPORAL_AFFINE_SHAPES, ids=shape_id)
def test_temporal_affine_backward_hidden(student, reference, rng, shape):
    N, T, D, M = shape
    args = temporal_affine_args(rng, N, T, D, M)
    judge_backward(student.temporal_affine_forward, student.temporal_affine_backward, args,
                   rng.standard_normal((N, T, M)), list(args),
                   reference=(reference.temporal_affine_forward, reference.temporal_affine_backward),
                   threshold=GRAD_THRESHOLD, what=f"for N, T, D, M = {shape}")


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


SOFTMAX_CASES = [((3, 4, 5), "all"), ((3, 4, 5), "lengths"), ((3, 4, 5), "one_empty"),
                 ((1, 1, 3), "all"), ((2, 1, 4), "lengths"), ((2, 3, 4), "one_empty"),
                 ((4, 5, 6), "lengths")]


def softmax_id(value):
    return shape_id(value) if isinstance(value, tuple) else value


def softmax_inputs(rng, shape, kind, scale=1.0):
    N, T, V = shape
    return (scale * rng.standard_normal((N, T, V)), rng.integers(0, V, size=(N, T)),
            softmax_mask(kind, rng, N, T))


@pytest.mark.parametrize("shape, kind", SOFTMAX_CASES, ids=softmax_id)
def test_temporal_softmax_loss_hidden(student, reference, rng, shape, kind):
    x, y, mask = softmax_inputs(rng, shape, kind, scale=2.0)
    loss, _ = student.temporal_softmax_loss(x, y, mask)
    assert_close(loss, reference.temporal_softmax_loss(x, y, mask)[0],
                 name=f"loss for N, T, V = {shape}, mask '{kind}'", threshold=MATCH_THRESHOLD)


def check_dx(loss, dx, expected, name):
    """dx against the reference's, judged on its own: a wrong loss is only noted."""
    __tracebackhide__ = True
    problem = forward_problem(loss, expected[0], "loss", threshold=MATCH_THRESHOLD)
    with explain_with(problem and f"note: {problem} (the loss value is graded by its own tests)"):
        assert_close(dx, expected[1], name=name, threshold=MATCH_THRESHOLD)


@pytest.mark.parametrize("shape, kind", SOFTMAX_CASES, ids=softmax_id)
def test_temporal_softmax_dx_hidden(student, reference, rng, shape, kind):
    x, y, mask = softmax_inputs(rng, shape, kind, scale=2.0)
    loss, dx = student.temporal_softmax_loss(x, y, mask)
    check_dx(loss, dx, reference.temporal_softmax_loss(x, y, mask),
             f"dx for N, T, V = {shape}, mask '{kind}'")


def masked_changed(rng, x, y, mask):
    """x and y with every masked step changed (wild scores, other labels)."""
    N, T, V = x.shape
    x2 = np.where(mask[:, :, None], x, 100.0 * rng.standard_normal((N, T, V)))
    y2 = np.where(mask, y, (y + 1) % V)
    return x2, y2


def test_temporal_softmax_loss_ignores_masked_steps_hidden(student, reference, rng):
    x, y, mask = softmax_inputs(rng, (3, 4, 5), "lengths")
    loss, _ = student.temporal_softmax_loss(x, y, mask)
    # Ignoring masked steps is easy for a loss that ignores everything: the value first.
    assert_close(loss, reference.temporal_softmax_loss(x, y, mask)[0], name="loss",
                 threshold=MATCH_THRESHOLD)
    loss2, _ = student.temporal_softmax_loss(*masked_changed(rng, x, y, mask), mask)
    assert_close(loss2, loss, name="loss after changing only the masked steps' scores and labels",
                 threshold=MATCH_THRESHOLD)


def test_temporal_softmax_dx_ignores_masked_steps_hidden(student, reference, rng):
    x, y, mask = softmax_inputs(rng, (3, 4, 5), "lengths")
    x2, y2 = masked_changed(rng, x, y, mask)
    loss, dx = student.temporal_softmax_loss(x2, y2, mask)
    # The reference's dx is zero at the masked steps.
    check_dx(loss, dx, reference.temporal_softmax_loss(x, y, mask),
             "dx (with wild scores and other labels at the masked steps)")


def test_temporal_softmax_loss_large_scores_hidden(student, reference, rng):
    # Scores of about +-1000: exp overflows unless each row's maximum is subtracted first.
    x, y, mask = softmax_inputs(rng, (2, 3, 4), "all", scale=1000.0)
    loss, _ = student.temporal_softmax_loss(x, y, mask)
    assert_close(loss, reference.temporal_softmax_loss(x, y, mask)[0],
                 name="loss with scores of about +-1000", threshold=MATCH_THRESHOLD)


def test_temporal_softmax_dx_large_scores_hidden(student, reference, rng):
    x, y, mask = softmax_inputs(rng, (2, 3, 4), "all", scale=1000.0)
    loss, dx = student.temporal_softmax_loss(x, y, mask)
    check_dx(loss, dx, reference.temporal_softmax_loss(x, y, mask), "dx with scores of about +-1000")

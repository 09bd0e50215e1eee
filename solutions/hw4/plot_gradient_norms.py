"""Plot how far back in time a gradient reaches, for a vanilla RNN and for an LSTM.

The loss reads only the last hidden state, L = sum(h[:, T-1] * u) for a fixed random u. BPTT
then gives dL/dx_t for every step t; its norm, divided by the norm at the last step, shows how
much of the signal survives the trip back through T-1-t steps. Run it from anywhere, once your
rnn_layers.py is complete:

    python plot_gradient_norms.py            # writes figures/gradient_norms.png

Uses this folder's rnn_layers.py: your own code.
"""
import sys
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import rnn_layers  # noqa: E402  (the module next to this script)

N, T, D, H = 16, 60, 20, 32


def relative_input_gradient_norms(forward, backward, params, rng):
    """||dL/dx_t|| / ||dL/dx_{T-1}|| for t = 0..T-1, when the loss reads h_{T-1} only.

    forward, backward: rnn_forward/rnn_backward or lstm_forward/lstm_backward.
    params: (Wx, Wh, b). Returns an array of shape (T,).
    """
    x = rng.standard_normal((N, T, D))
    h0 = np.zeros((N, H))
    _, cache = forward(x, h0, *params)
    dh = np.zeros((N, T, H))
    dh[:, -1] = rng.standard_normal((N, H))
    dx = backward(dh, cache)[0]
    norms = np.linalg.norm(dx.reshape(N, T, D).transpose(1, 0, 2).reshape(T, -1), axis=1)
    return norms / norms[-1]


def rnn_params(rng):
    # Recurrent weights scaled as in a common initialization (variance 1/H).
    return (rng.standard_normal((D, H)) / np.sqrt(D),
            rng.standard_normal((H, H)) / np.sqrt(H),
            np.zeros(H))


def lstm_params(rng, forget_bias):
    b = np.zeros(4 * H)
    b[H:2 * H] = forget_bias  # the forget gate is the second block (order i, f, o, g)
    return (rng.standard_normal((D, 4 * H)) / np.sqrt(D),
            rng.standard_normal((H, 4 * H)) / np.sqrt(H),
            b)


def main(out_path=HERE / "figures" / "gradient_norms.png"):
    import matplotlib

    matplotlib.use("Agg")  # no display needed
    import matplotlib.pyplot as plt

    rng = np.random.default_rng(0)
    curves = {
        "vanilla RNN (tanh)": relative_input_gradient_norms(
            rnn_layers.rnn_forward, rnn_layers.rnn_backward, rnn_params(rng), rng),
        "LSTM, forget-gate bias 0": relative_input_gradient_norms(
            rnn_layers.lstm_forward, rnn_layers.lstm_backward, lstm_params(rng, 0.0), rng),
        "LSTM, forget-gate bias 3": relative_input_gradient_norms(
            rnn_layers.lstm_forward, rnn_layers.lstm_backward, lstm_params(rng, 3.0), rng),
    }
    fig, ax = plt.subplots(figsize=(6.4, 3.6), dpi=100)
    steps = np.arange(T)
    for label, norms in curves.items():
        ax.semilogy(steps, norms, label=label)
    ax.set_xlabel("time step t (the loss reads the last step only)")
    ax.set_ylabel(r"$\|\partial L/\partial x_t\|$ / value at last step")
    ax.set_title(f"Gradient reaching each input step (T = {T}, H = {H})")
    ax.grid(True, which="major", alpha=0.3)
    ax.legend()
    fig.tight_layout()
    out_path = Path(out_path)
    out_path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out_path)
    plt.close(fig)
    for label, norms in curves.items():
        print(f"{label:28s} relative norm at t=0: {norms[0]:.2e}")
    print(f"wrote {out_path}")


if __name__ == "__main__":
    main()

"""Plot the paths that the hw3 update rules take on two 2-D test functions.

    python plot_paths.py            (from this folder, or give the path to it)

writes figures/optimizer_paths.png: on the left an ill-conditioned quadratic bowl, on the
right the Rosenbrock function. It uses your optim.py, so it works once the rules are written.

The step sizes below are the ones the handout quotes; each is about the largest at which the
rule still behaves on that function, so the plot compares the rules at their best rather than
at one shared learning rate (which would suit none of them).
"""
from pathlib import Path

import numpy as np

import optim

RULES = ["sgd", "sgd_momentum", "nesterov_momentum", "adagrad", "rmsprop", "adam"]

# f(x, y) = (x**2 + 20 * y**2) / 2: curvature 1 along x and 20 along y (condition number 20).
QUADRATIC_START = (-4.5, 1.5)
QUADRATIC_STEPS = 60
QUADRATIC_CONFIGS = {
    "sgd": {"learning_rate": 0.09},
    "sgd_momentum": {"learning_rate": 0.02, "momentum": 0.8},
    "nesterov_momentum": {"learning_rate": 0.02, "momentum": 0.8},
    "adagrad": {"learning_rate": 1.0},
    "rmsprop": {"learning_rate": 0.1, "decay_rate": 0.9},
    "adam": {"learning_rate": 0.3},
}

# f(x, y) = (1 - x)**2 + 100 * (y - x**2)**2: a curved, flat-bottomed valley; minimum at (1, 1).
ROSENBROCK_START = (-1.5, 2.0)
ROSENBROCK_STEPS = 2000
ROSENBROCK_CONFIGS = {
    "sgd": {"learning_rate": 1e-3},
    "sgd_momentum": {"learning_rate": 1e-3, "momentum": 0.9},
    "nesterov_momentum": {"learning_rate": 1e-3, "momentum": 0.9},
    "adagrad": {"learning_rate": 0.5},
    "rmsprop": {"learning_rate": 3e-3, "decay_rate": 0.99},
    "adam": {"learning_rate": 3e-2},
}


def quadratic(p):
    """Loss and gradient of (x**2 + 20 y**2) / 2 at p = array([x, y]). Returns (float, (2,))."""
    x, y = p
    return 0.5 * (x * x + 20.0 * y * y), np.array([x, 20.0 * y])


def rosenbrock(p):
    """Loss and gradient of the Rosenbrock function at p = array([x, y]). Returns (float, (2,))."""
    x, y = p
    r = y - x * x
    loss = (1.0 - x) ** 2 + 100.0 * r * r
    grad = np.array([-2.0 * (1.0 - x) - 400.0 * x * r, 200.0 * r])
    return loss, grad


def run(rule, loss_and_grad, start, config, steps):
    """Follow one rule from start for a number of steps.

    Returns a tuple of:
    - path: Array of shape (steps + 1, 2), the points visited (start first).
    - losses: Array of shape (steps + 1,), the loss at each of them.
    """
    update = getattr(optim, rule)
    w = np.array(start, dtype=np.float64)
    config = dict(config)
    path, losses = [w.copy()], []
    for _ in range(steps):
        loss, grad = loss_and_grad(w)
        losses.append(loss)
        w, config = update(w, grad, config)
        path.append(np.array(w))
    losses.append(loss_and_grad(w)[0])
    return np.array(path), np.array(losses)


def _panel(ax, title, loss_and_grad, start, configs, steps, extent, levels, legend_at):
    xs = np.linspace(extent[0], extent[1], 300)
    ys = np.linspace(extent[2], extent[3], 300)
    X, Y = np.meshgrid(xs, ys)
    Z = np.vectorize(lambda x, y: loss_and_grad((x, y))[0])(X, Y)
    ax.contour(X, Y, Z, levels=levels, colors="0.75", linewidths=0.6)
    for rule in RULES:
        path, losses = run(rule, loss_and_grad, start, configs[rule], steps)
        label = f"{rule} (lr {configs[rule]['learning_rate']:g}): loss {losses[-1]:.2g}"
        # Dots mark the steps where there are few enough of them to tell apart.
        ax.plot(path[:, 0], path[:, 1], lw=1.2, marker="." if steps <= 100 else None, ms=3, label=label)
    ax.plot(*start, "ko", ms=5)
    ax.set_xlim(extent[0], extent[1])
    ax.set_ylim(extent[2], extent[3])
    ax.set_title(f"{title}, {steps} steps")
    ax.legend(fontsize=7, loc=legend_at)


def main(out_dir=None):
    """Draw both panels into out_dir/optimizer_paths.png (default: figures/ beside this file)."""
    import matplotlib

    matplotlib.use("Agg")  # a file only, no window: the script also runs on headless machines
    import matplotlib.pyplot as plt

    out_dir = Path(out_dir) if out_dir is not None else Path(__file__).resolve().parent / "figures"
    out_dir.mkdir(parents=True, exist_ok=True)
    fig, (left, right) = plt.subplots(1, 2, figsize=(12, 5))
    _panel(left, "Quadratic (x² + 20y²)/2", quadratic, QUADRATIC_START, QUADRATIC_CONFIGS,
           QUADRATIC_STEPS, (-5, 1, -2, 2), np.geomspace(0.05, 60, 12), "lower right")
    _panel(right, "Rosenbrock", rosenbrock, ROSENBROCK_START, ROSENBROCK_CONFIGS,
           ROSENBROCK_STEPS, (-2, 1.6, -0.6, 3), np.geomspace(0.1, 500, 14), "upper right")
    right.plot(1, 1, "k*", ms=10)
    fig.tight_layout()
    out = out_dir / "optimizer_paths.png"
    fig.savefig(out, dpi=80)
    plt.close(fig)
    return out


if __name__ == "__main__":
    print(f"wrote {main()}")

"""Draw the handout's figure: hand-made filters applied to a synthetic image with our conv.

Run from anywhere, once conv_forward_im2col works:  python assignments/hw2/make_figures.py
Writes figures/kernels.png next to this script.

The image is drawn here (shapes, a smooth shade and a little noise), so nothing is downloaded.
"""
from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # no display needed
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from conv_layers import conv_forward_im2col  # noqa: E402  (the module beside this script)

OUT = Path(__file__).resolve().parent / "figures" / "kernels.png"


def synthetic_image(size=96, seed=0):
    """A (size, size) grey image in [0, 1]: a bright disc, a dark square, diagonal stripes on a
    smooth left-to-right shade, plus mild noise."""
    yy, xx = np.mgrid[0:size, 0:size] / size
    img = 0.35 + 0.3 * xx
    img[(yy - 0.32) ** 2 + (xx - 0.3) ** 2 < 0.17 ** 2] = 0.95
    img[(yy > 0.55) & (yy < 0.85) & (xx > 0.12) & (xx < 0.42)] = 0.05
    stripes = (yy > 0.5) & (xx > 0.55) & (xx < 0.92) & (yy < 0.92)
    img[stripes] = 0.5 + 0.45 * np.sign(np.sin(40 * (xx[stripes] + yy[stripes])))
    img += 0.03 * np.random.default_rng(seed).standard_normal(img.shape)
    return np.clip(img, 0.0, 1.0)


def kernels():
    """name -> 2-D filter. Our conv does not flip the filter (cross-correlation), so the
    Sobel filters below respond to brightness growing rightwards / downwards."""
    ys, xs = np.mgrid[-2:3, -2:3]
    gauss = np.exp(-(xs ** 2 + ys ** 2) / 2.0)
    return {
        "box blur 5x5": np.full((5, 5), 1 / 25),
        "Gaussian blur 5x5": gauss / gauss.sum(),
        "Sobel x (vertical edges)": np.array([[-1, 0, 1], [-2, 0, 2], [-1, 0, 1]], dtype=float),
        "Sobel y (horizontal edges)": np.array([[-1, -2, -1], [0, 0, 0], [1, 2, 1]], dtype=float),
        "Laplacian (all edges)": np.array([[0, 1, 0], [1, -4, 1], [0, 1, 0]], dtype=float),
    }


def main():
    img = synthetic_image()
    bank = kernels()
    fig, axes = plt.subplots(2, 3, figsize=(7.5, 5.4))
    axes = axes.ravel()
    axes[0].imshow(img, cmap="gray", vmin=0, vmax=1, interpolation="nearest")
    axes[0].set_title("input", fontsize=9)
    for ax, (name, k) in zip(axes[1:], bank.items()):
        kh, kw = k.shape
        # "Same" padding: pad (k - 1) / 2 keeps the 96 x 96 size for odd filters at stride 1.
        out, _ = conv_forward_im2col(img[None, None], k[None, None], np.zeros(1),
                                     {"stride": 1, "pad": (kh - 1) // 2})
        res = out[0, 0]
        if "blur" in name:
            ax.imshow(res, cmap="gray", vmin=0, vmax=1, interpolation="nearest")
        else:
            lim = np.abs(res).max()
            ax.imshow(res, cmap="RdBu_r", vmin=-lim, vmax=lim, interpolation="nearest")  # sign matters for edges
        ax.set_title(name, fontsize=9)
    for ax in axes:
        ax.set_xticks([])
        ax.set_yticks([])
    fig.tight_layout()
    OUT.parent.mkdir(exist_ok=True)
    fig.savefig(OUT, dpi=72)
    print(f"wrote {OUT}")


if __name__ == "__main__":
    main()

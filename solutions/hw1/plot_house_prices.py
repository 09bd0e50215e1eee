"""Plot the house-price data and a training run of your regression.

    python plot_house_prices.py        (from this folder, or give the path to it)

writes figures/house_prices.png: on the left, price against living area for the training
houses, coloured by distance to the centre; on the right, the mean minibatch loss per epoch of
train_regression with its default settings, and the test R^2 in the title. It uses your
house_prices.py (and through it fc_net.py and layers.py), so it works once those are written.
"""
from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # write a file; no window needed
import matplotlib.pyplot as plt  # noqa: E402

from house_prices import make_house_data, r2_score, train_regression  # noqa: E402

HERE = Path(__file__).resolve().parent


def main():
    data = make_house_data(seed=0)
    # Undo the standardization so the axes read in square metres and thousands.
    area = data["X_train"][:, 0] * data["x_std"][0] + data["x_mean"][0]
    distance = data["X_train"][:, 3] * data["x_std"][3] + data["x_mean"][3]
    price = data["y_train"] * data["y_std"] + data["y_mean"]

    model, history = train_regression(data["X_train"], data["y_train"])
    r2 = r2_score(data["y_test"], model.loss(data["X_test"]))

    fig, (left, right) = plt.subplots(1, 2, figsize=(9, 3.6))
    points = left.scatter(area, price, c=distance, s=6, cmap="viridis", vmax=20)
    fig.colorbar(points, ax=left, label="distance to centre (km)")
    left.set_xlabel("living area (m²)")
    left.set_ylabel("price (thousands)")
    left.set_title("training houses")

    right.plot(range(1, len(history) + 1), history, marker=".")
    right.set_yscale("log")
    right.set_xlabel("epoch")
    right.set_ylabel("mean minibatch loss (standardized)")
    right.set_title(f"train_regression: test R² = {r2:.3f}")

    fig.tight_layout()
    out = HERE / "figures" / "house_prices.png"
    out.parent.mkdir(exist_ok=True)
    fig.savefig(out, dpi=80)
    print(f"wrote {out} (test R^2 = {r2:.3f})")


if __name__ == "__main__":
    main()

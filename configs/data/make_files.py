"""Regenerate the small example files used by configs/csv.yaml and configs/npz.yaml.

Run: python configs/data/make_files.py
"""
from pathlib import Path

import numpy as np

HERE = Path(__file__).parent


def xor_csv(path: Path, n: int = 400, seed: int = 0) -> None:
    """Two features, label = XOR of their signs, 10% of labels flipped: no linear model can fit it."""
    rng = np.random.default_rng(seed)
    x = rng.uniform(-1, 1, size=(n, 2))
    label = (x[:, 0] > 0) ^ (x[:, 1] > 0)
    label ^= rng.random(n) < 0.1
    rows = ["x1,x2,label"] + [f"{a:.5f},{b:.5f},{'yes' if c else 'no'}" for (a, b), c in zip(x, label)]
    path.write_text("\n".join(rows) + "\n")


def ramp_npz(path: Path, n_train: int = 300, n_test: int = 300, length: int = 16, seed: int = 0) -> None:
    """1-D signals of length 16; the target is the slope of the ramp hidden in the noise (regression)."""
    rng = np.random.default_rng(seed)

    def draw(n):
        slope = rng.uniform(-1, 1, size=n)
        t = np.linspace(-1, 1, length)
        x = slope[:, None] * t[None, :] + 0.3 * rng.standard_normal((n, length))
        return x.astype(np.float32), slope.astype(np.float32)

    x, y = draw(n_train)
    x_test, y_test = draw(n_test)
    np.savez(path, x=x, y=y, x_test=x_test, y_test=y_test)


if __name__ == "__main__":
    xor_csv(HERE / "xor.csv")
    ramp_npz(HERE / "ramp.npz")

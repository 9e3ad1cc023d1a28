"""Benchmark: 16 CNNs of width k (Nakkiran et al.'s 5-layer CNN, batch norm) trained as one stack,
grouped convolutions with groups=16, against the same 16 points one by one (`--no-vectorize`),
alternating A B A B in one process so that both pay the same start-up once, outside the timings. Each
timing is a whole `run_sweep`: preparing every point, training, measuring, writing every run's files.

Data: CIFAR-shaped random images (3×32×32, 10 classes) in an .npz; 4 lr × 4 seeds, SGD with momentum,
batch 128.

Run: python benchmarks/stacked_cnn.py [--width 8] [--n-train 1000] [--epochs 2] [--repeats 3] [--device cpu|cuda]
"""
import argparse
import tempfile
from pathlib import Path

import numpy as np
import yaml

from pairs import one_by_one_against_stacked

LRS = "0.01,0.02,0.05,0.1"
SEEDS = 4


def write_data(folder: Path, n_train: int, n_test: int) -> Path:
    rng = np.random.default_rng(0)
    arrays = {}
    for name, n in (("x", n_train), ("x_test", n_test)):
        arrays[name] = rng.normal(size=(n, 3, 32, 32)).astype(np.float32)
        arrays["y" + name[1:]] = rng.integers(0, 10, n)
    path = folder / "images.npz"
    np.savez(path, **arrays)
    return path


def write_config(folder: Path, data: Path, width: int, device: str) -> Path:
    config = {"name": "stacked_cnn", "seed": 0, "device": device,
              "data": {"name": "npz", "params": {"path": str(data)}},
              "model": {"name": "cnn", "width": width, "norm": "batch"},
              "loss": "cross_entropy", "optim": {"name": "sgd", "lr": 0.05, "momentum": 0.9, "batch_size": 128},
              "train": {"epochs": 1}}
    path = folder / "stacked_cnn.yaml"
    path.write_text(yaml.safe_dump(config))
    return path


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--width", type=int, default=8)
    parser.add_argument("--n-train", type=int, default=1000)
    parser.add_argument("--n-test", type=int, default=200)
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--device", default="cpu")
    arguments = parser.parse_args()
    folder = Path(tempfile.mkdtemp())
    data = write_data(folder, arguments.n_train, arguments.n_test)
    config = write_config(folder, data, arguments.width, arguments.device)

    print(f"16 CNNs of width {arguments.width} (batch norm), {arguments.n_train} images 3×32×32, "
          f"{arguments.epochs} epochs, batch 128, {arguments.device}")
    one_by_one_against_stacked(config, [f"optim.lr={LRS}"], SEEDS, [f"train.epochs={arguments.epochs}"],
                               arguments.repeats, "stacked", "GPU target ≥ 5")


if __name__ == "__main__":
    main()

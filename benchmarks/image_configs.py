"""Time the image configs end to end, as shipped or in the reduced form their headers give.

    python benchmarks/image_configs.py --root ~/.cache/dlcli/data       (the data sets on disk)
    python benchmarks/image_configs.py                                  (none here: stand-ins)

Without the data sets on disk, stand-ins of the same shapes are written in their own files (CIFAR-10's
pickles, Fashion-MNIST's idx files; each image its class's random template plus noise): the timings are
those of the real sets, the errors are not. torchvision checks the MD5 sums of CIFAR's files, which a
stand-in cannot match, so for it alone that check is skipped. `--device cuda` times them on a GPU.
"""
from __future__ import annotations

import argparse
import pickle
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parent.parent
REDUCED = {
    "fashion_mnist_overfit": [],  # as shipped
    "cifar10_random_labels": ["--set", "data.n_train=1000", "--set", "train.epochs=60", "--set", "model.width=8"],
    "double_descent_cnn": ["--set", "data.n_train=1000", "--set", "data.n_test=1000", "--set", "train.epochs=30",
                           "--grid", "model.width=1,2,4,8"],
    "double_descent_resnet": ["--set", "data.n_train=500", "--set", "data.n_test=500", "--set", "train.epochs=10",
                              "--grid", "model.width=1,2,4"],
}
# Runs the CLI with torchvision's MD5 check of CIFAR's files turned off (the stand-in's only difference).
TRUSTING_CLI = ("import sys, torchvision.datasets.cifar as cifar; cifar.check_integrity = lambda *a, **k: True; "
                "from dlcli.cli import main; sys.argv[0] = 'dlcli'; main()")


def write_fashion_stand_in(root: Path, seed: int = 0) -> None:
    """Fashion-MNIST's idx files: 60 000 training and 10 000 test images of 28 × 28 bytes."""
    rng = np.random.default_rng(seed)
    templates = rng.integers(0, 256, size=(10, 28, 28))
    raw = root / "FashionMNIST" / "raw"
    raw.mkdir(parents=True, exist_ok=True)

    def idx(array: np.ndarray) -> bytes:
        return bytes([0, 0, 8, array.ndim]) + b"".join(int(n).to_bytes(4, "big") for n in array.shape) + array.tobytes()

    for split, n in (("train", 60_000), ("t10k", 10_000)):
        labels = rng.integers(0, 10, size=n)
        images = np.clip(templates[labels] + rng.normal(0, 60, size=(n, 28, 28)), 0, 255).astype(np.uint8)
        (raw / f"{split}-images-idx3-ubyte").write_bytes(idx(images))
        (raw / f"{split}-labels-idx1-ubyte").write_bytes(idx(labels.astype(np.uint8)))


def write_stand_in(root: Path, seed: int = 0) -> None:
    """CIFAR-10's python pickles: five training batches of 10 000 and a test batch, rows of 3072 bytes."""
    rng = np.random.default_rng(seed)
    templates = rng.integers(0, 256, size=(10, 3072))
    folder = root / "cifar-10-batches-py"
    folder.mkdir(parents=True, exist_ok=True)

    def batch(n: int) -> dict:
        labels = rng.integers(0, 10, size=n)
        noise = rng.normal(0, 60, size=(n, 3072))
        return {"data": np.clip(templates[labels] + noise, 0, 255).astype(np.uint8), "labels": labels.tolist()}

    for name in [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]:
        with open(folder / name, "wb") as file:
            pickle.dump(batch(10_000), file)
    with open(folder / "batches.meta", "wb") as file:
        pickle.dump({"label_names": [f"class{i}" for i in range(10)]}, file)


def time_config(name: str, root: Path, device: str, stand_in: bool) -> float:
    with tempfile.TemporaryDirectory() as out:
        command = [sys.executable, "-c", TRUSTING_CLI] if stand_in else [sys.executable, "-m", "dlcli"]
        command += ["sweep", str(REPO / "configs" / f"{name}.yaml"), *REDUCED[name], "--set", f"data.root={root}",
                    "--set", f"device={device}", "--out", out]
        started = time.perf_counter()
        subprocess.run(command, check=True, stdout=subprocess.DEVNULL)
        return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--root", type=Path, help="a data.root holding CIFAR-10 (default: a stand-in)")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--configs", nargs="+", default=list(REDUCED))
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as scratch:
        root = args.root or Path(scratch)
        if args.root is None:
            write_stand_in(root)
            write_fashion_stand_in(root)
        for name in args.configs:
            seconds = time_config(name, root, args.device, stand_in=args.root is None)
            print(f"{name} (reduced: {' '.join(REDUCED[name])}): {seconds:.1f} s on {args.device}")


if __name__ == "__main__":
    main()

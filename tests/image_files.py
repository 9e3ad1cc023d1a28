"""Tiny image sets written in the real on-disk formats torchvision reads (nothing is downloaded):
CIFAR-10/100 python pickle batches, MNIST idx-ubyte files, SVHN .mat files and folders of PNGs.

torchvision's CIFAR and SVHN classes compare each file's MD5 sum with the official one; tests of those
formats patch `check_integrity` in torchvision.datasets.cifar and .svhn (the `trust_files` fixture), since
a tiny file written here can never have the official sum. MNIST checks only that its files exist.
"""
from __future__ import annotations

import pickle
import struct
from pathlib import Path

import numpy as np
import pytest

CIFAR10_NAMES = ["airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"]


def images(n: int, shape: tuple[int, ...], classes: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """n uint8 images (n, *shape), each its class's random template plus noise (learnable), and the labels."""
    rng = np.random.default_rng(seed)
    labels = rng.permutation(np.arange(n) % classes)
    templates = rng.integers(0, 192, size=(classes, *shape))
    pixels = templates[labels] + rng.integers(0, 64, size=(n, *shape))
    return pixels.astype(np.uint8), labels.astype(np.int64)


def _pickle(path: Path, content: dict) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "wb") as file:
        pickle.dump(content, file)


def write_cifar10(root: Path, n_per_batch: int = 20, n_test: int = 30, seed: int = 0) -> dict[str, np.ndarray]:
    """root/cifar-10-batches-py/: data_batch_1..5, test_batch (rows of 3072 bytes, channel-major),
    batches.meta. Returns the images (n, 3, 32, 32) and labels as written."""
    folder = root / "cifar-10-batches-py"
    x, y = images(5 * n_per_batch + n_test, (3, 32, 32), 10, seed)
    for batch in range(5):
        part = slice(batch * n_per_batch, (batch + 1) * n_per_batch)
        _pickle(folder / f"data_batch_{batch + 1}", {"data": x[part].reshape(-1, 3072), "labels": y[part].tolist()})
    _pickle(folder / "test_batch", {"data": x[5 * n_per_batch:].reshape(-1, 3072), "labels": y[5 * n_per_batch:].tolist()})
    _pickle(folder / "batches.meta", {"label_names": CIFAR10_NAMES})
    return {"x_train": x[: 5 * n_per_batch], "y_train": y[: 5 * n_per_batch],
            "x_test": x[5 * n_per_batch:], "y_test": y[5 * n_per_batch:]}


def write_cifar100(root: Path, n_train: int = 200, n_test: int = 100, seed: int = 1) -> dict[str, np.ndarray]:
    """root/cifar-100-python/: train, test (fine and coarse labels), meta."""
    folder = root / "cifar-100-python"
    x, y = images(n_train + n_test, (3, 32, 32), 100, seed)
    for name, part in (("train", slice(0, n_train)), ("test", slice(n_train, None))):
        _pickle(folder / name, {"data": x[part].reshape(-1, 3072), "fine_labels": y[part].tolist(),
                                "coarse_labels": (y[part] // 5).tolist()})
    _pickle(folder / "meta", {"fine_label_names": [f"class{i}" for i in range(100)],
                              "coarse_label_names": [f"super{i}" for i in range(20)]})
    return {"x_train": x[:n_train], "y_train": y[:n_train], "x_test": x[n_train:], "y_test": y[n_train:]}


def write_mnist(root: Path, folder: str = "MNIST", n_train: int = 60, n_test: int = 20,
                seed: int = 2) -> dict[str, np.ndarray]:
    """root/<folder>/raw/{train,t10k}-{images-idx3,labels-idx1}-ubyte, big-endian idx headers."""
    raw = root / folder / "raw"
    raw.mkdir(parents=True, exist_ok=True)
    x, y = images(n_train + n_test, (28, 28), 10, seed)
    for prefix, part in (("train", slice(0, n_train)), ("t10k", slice(n_train, None))):
        pixels, labels = x[part], y[part].astype(np.uint8)
        # magic: 0x08 (unsigned bytes) × 256 + the number of dimensions
        (raw / f"{prefix}-images-idx3-ubyte").write_bytes(struct.pack(">IIII", 0x0803, len(pixels), 28, 28)
                                                          + pixels.tobytes())
        (raw / f"{prefix}-labels-idx1-ubyte").write_bytes(struct.pack(">II", 0x0801, len(labels)) + labels.tobytes())
    return {"x_train": x[:n_train, None], "y_train": y[:n_train], "x_test": x[n_train:, None], "y_test": y[n_train:]}


def write_svhn(root: Path, n_train: int = 40, n_test: int = 20, seed: int = 3) -> dict[str, np.ndarray]:
    """root/{train,test}_32x32.mat: X (32, 32, 3, n) and y (n, 1) with the digit 0 stored as 10."""
    from scipy.io import savemat

    root.mkdir(parents=True, exist_ok=True)
    x, y = images(n_train + n_test, (3, 32, 32), 10, seed)
    for name, part in (("train", slice(0, n_train)), ("test", slice(n_train, None))):
        stored = np.where(y[part] == 0, 10, y[part]).reshape(-1, 1).astype(np.uint8)
        savemat(root / f"{name}_32x32.mat", {"X": x[part].transpose(2, 3, 1, 0), "y": stored})
    return {"x_train": x[:n_train], "y_train": y[:n_train], "x_test": x[n_train:], "y_test": y[n_train:]}


def write_png_folder(folder: Path, classes: tuple[str, ...], per_class: int, size: tuple[int, int] = (12, 10),
                     seed: int = 4) -> None:
    """folder/<class>/<i>.png: RGB PNGs of `size` (width, height), brighter for later classes."""
    from PIL import Image

    rng = np.random.default_rng(seed)
    for index, name in enumerate(classes):
        (folder / name).mkdir(parents=True, exist_ok=True)
        for i in range(per_class):
            pixels = rng.integers(0, 64, size=(size[1], size[0], 3)) + 60 * index
            Image.fromarray(pixels.astype(np.uint8), "RGB").save(folder / name / f"{i}.png")


def write_image_set(root: Path, name: str) -> dict[str, np.ndarray]:
    """A tiny copy of torchvision set `name` (data.name) under `root`, in its real format."""
    writers = {"cifar10": write_cifar10, "cifar100": write_cifar100, "svhn": write_svhn, "mnist": write_mnist,
               "fashion_mnist": lambda folder: write_mnist(folder, "FashionMNIST"),
               "kmnist": lambda folder: write_mnist(folder, "KMNIST")}
    return writers[name](root)


@pytest.fixture
def trust_files(monkeypatch):
    """Let torchvision's CIFAR and SVHN readers accept files written here: their MD5 check, and only
    it, passes whenever the file exists (the tiny files cannot carry the official sums)."""
    import torchvision.datasets.cifar
    import torchvision.datasets.svhn

    exists = lambda path, md5=None: Path(path).is_file()  # noqa: E731
    monkeypatch.setattr(torchvision.datasets.cifar, "check_integrity", exists)
    monkeypatch.setattr(torchvision.datasets.svhn, "check_integrity", exists)

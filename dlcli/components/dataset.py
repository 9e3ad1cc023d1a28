"""Dataset: the arrays a run trains and is measured on, as NumPy on the host.

Most data sets hold float32 inputs, already standardized on the host. Image sets read through
torchvision hold their pixels as uint8 (4× less memory, on the host and on the device) with the
per-channel mean and std they are normalized with (`normalize`), applied batch by batch on the device
(`dlcli.engine.batches.model_inputs`).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import numpy as np

Kind = Literal["tabular", "sequence", "image"]
STATS_CHUNK = 4096  # images per step when channel statistics are summed (bounds the float64 copy)


@dataclass(frozen=True)
class Dataset:
    x_train: np.ndarray  # float32, shape (n, *input_shape); or uint8 images (n, C, H, W) with `normalize`
    y_train: np.ndarray  # int64 class indices, or float32 regression targets
    x_test: np.ndarray
    y_test: np.ndarray
    task: Literal["classification", "regression"]
    num_classes: int | None  # None for regression
    kind: Kind  # how a cnn reads the input: 1-D sequence, 2-D image, or neither
    bayes_error: float | None = None  # the lowest error any model can reach, where known
    class_names: tuple[str, ...] | None = None
    x_val: np.ndarray | None = None  # held out of the training set (train.val_fraction)
    y_val: np.ndarray | None = None
    # uint8 images: the model's input is (x − mean) / std, both float32 of shape (1, C, 1, 1)
    normalize: tuple[np.ndarray, np.ndarray] | None = None

    @property
    def input_shape(self) -> tuple[int, ...]:
        return tuple(self.x_train.shape[1:])


def pixel_scale(channels: int) -> tuple[np.ndarray, np.ndarray]:
    """The normalization of unstandardized images: pixels 0…255 to [0, 1], as torchvision's ToTensor."""
    return np.zeros((1, channels, 1, 1), np.float32), np.full((1, channels, 1, 1), 255.0, np.float32)


def channel_stats(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per-channel mean and std of uint8 images (n, C, H, W), summed in float64 a chunk at a time;
    a constant channel keeps std 1."""
    total = np.zeros(x.shape[1])
    squares = np.zeros(x.shape[1])
    for start in range(0, len(x), STATS_CHUNK):
        chunk = x[start:start + STATS_CHUNK].astype(np.float64)
        total += chunk.sum(axis=(0, 2, 3))
        squares += np.square(chunk).sum(axis=(0, 2, 3))
    count = len(x) * x.shape[2] * x.shape[3]
    mean = total / count
    std = np.sqrt(np.maximum(squares / count - mean**2, 0.0))
    std = np.where(std > 1e-6, std, 1.0)
    shape = (1, x.shape[1], 1, 1)
    return mean.reshape(shape).astype(np.float32), std.reshape(shape).astype(np.float32)

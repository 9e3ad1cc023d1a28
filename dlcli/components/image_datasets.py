"""Image data sets, read through torchvision's own classes and kept as uint8 images (n, C, H, W).

`mnist`, `fashion_mnist`, `kmnist` (1×28×28), `cifar10`, `cifar100` and `svhn` (3×32×32) come with their
official train and test splits, from `data.root` laid out as torchvision lays them out (torchvision
downloads a missing one there with `data.download: true`, and only then). `image_folder` reads a user's
own images with torchvision's ImageFolder. The pixels stay uint8; each Dataset carries the scaling to
[0, 1] (`pixel_scale`), which `data.standardize` replaces with the training set's channel statistics.
torchvision is imported only when a set is read.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np

from dlcli.components.data_cache import user_cache
from dlcli.components.dataset import Dataset, pixel_scale
from dlcli.components.validation import class_problem, raise_problems
from dlcli.config.schema import DataConfig
from dlcli.errors import UserError


@dataclass(frozen=True)
class TorchvisionSet:
    """One torchvision set: its class, the files it reads under the root, the shape of its images and
    how many there are, train and test (for the memory check before reading)."""

    name: str
    files: str
    shape: tuple[int, int, int]
    images: int


MNIST_FILES = "raw/{train,t10k}-{images-idx3,labels-idx1}-ubyte"
TORCHVISION = {
    "mnist": TorchvisionSet("MNIST", f"MNIST/{MNIST_FILES}", (1, 28, 28), 70_000),
    "fashion_mnist": TorchvisionSet("FashionMNIST", f"FashionMNIST/{MNIST_FILES}", (1, 28, 28), 70_000),
    "kmnist": TorchvisionSet("KMNIST", f"KMNIST/{MNIST_FILES}", (1, 28, 28), 70_000),
    "cifar10": TorchvisionSet("CIFAR10", "cifar-10-batches-py/{data_batch_1..5,test_batch,batches.meta}",
                              (3, 32, 32), 60_000),
    "cifar100": TorchvisionSet("CIFAR100", "cifar-100-python/{train,test,meta}", (3, 32, 32), 60_000),
    "svhn": TorchvisionSet("SVHN", "{train,test}_32x32.mat", (3, 32, 32), 73_257 + 26_032),
}
IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".ppm", ".bmp", ".pgm", ".tif", ".tiff", ".webp")  # ImageFolder's
COPIES_WHILE_READ = 2  # torchvision's arrays and dlcli's channels-first copy, at the peak


def data_root(config: DataConfig) -> Path:
    """Where image sets are read from: `data.root`, else the per-user cache folder."""
    return Path(config.root) if config.root is not None else user_cache()


def stored_bytes(config: DataConfig) -> int | None:
    """The memory reading this image set takes at its peak (None: not an image set), known before a
    byte is read so that a set too large for the memory is refused in one line."""
    if config.name in TORCHVISION:
        known = TORCHVISION[config.name]
        return COPIES_WHILE_READ * known.images * int(np.prod(known.shape))
    if config.name == "image_folder" and config.root is not None and Path(config.root).is_dir():
        count = sum(1 for path in Path(config.root).rglob("*") if path.suffix.lower() in IMAGE_SUFFIXES)
        channels = 1 if config.params.get("grayscale") else 3
        return COPIES_WHILE_READ * count * channels * config.image_size**2
    return None


# ---- torchvision's sets -----------------------------------------------------------------------------


def torchvision_set(config: DataConfig, rng: np.random.Generator) -> Dataset:
    """The official train and test splits of one of torchvision's sets, as uint8 (n, C, H, W)."""
    shape = TORCHVISION[config.name].shape
    x_train, y_train, names = _split_arrays(_opened(config, train=True), shape)
    x_test, y_test, _ = _split_arrays(_opened(config, train=False), shape)
    return Dataset(x_train, y_train, x_test, y_test, "classification", len(names), "image", class_names=names,
                   normalize=pixel_scale(x_train.shape[1]))


def _opened(config: DataConfig, train: bool):
    """torchvision's object for one split, or a one-line `UserError` naming the folder and the flag."""
    import torchvision.datasets

    known, root = TORCHVISION[config.name], data_root(config)
    reader = getattr(torchvision.datasets, known.name)
    split = {"split": "train" if train else "test"} if config.name == "svhn" else {"train": train}
    folders = _folders(root)
    try:
        return reader(str(root), download=config.download, **split)
    except (RuntimeError, OSError) as error:
        if config.download:
            _remove_new_empty_folders(root, folders)  # torchvision makes its folders before it downloads
            reason = " ".join(str(error).split())[:300] or type(error).__name__  # torchvision's spans lines
            raise UserError(f"data.download: could not download {config.name} into {root}: {reason}") from None
        raise UserError(f"data.root: {config.name} not found (or corrupted) in {root} (torchvision reads "
                        f"{root / known.files}); set data.download: true to download it there, or data.root to "
                        "the folder that holds it") from None
    # A file there, but not in the format (torchvision asserts an idx file's magic number and type).
    except (ValueError, EOFError, KeyError, IndexError, AssertionError, TypeError) as error:
        reason = " ".join(str(error).split())[:200] or "a file is not in the format torchvision reads"
        raise UserError(f"data.root: cannot read {config.name} from {root / known.files}: {reason}") from None


def _folders(root: Path) -> set[Path]:
    return {root, *(path for path in root.rglob("*") if path.is_dir())} if root.is_dir() else set()


def _remove_new_empty_folders(root: Path, before: set[Path]) -> None:
    """The folders under `root` (and root) made since `before` and left empty, deepest first."""
    for folder in sorted(_folders(root) - before, key=lambda path: -len(path.parts)):
        if not any(folder.iterdir()):
            folder.rmdir()


def _split_arrays(opened, shape: tuple[int, int, int]) -> tuple[np.ndarray, np.ndarray, tuple[str, ...]]:
    """Images (n, C, H, W) uint8, labels int64 and class names from a torchvision object."""
    data = opened.data.numpy() if hasattr(opened.data, "numpy") else np.asarray(opened.data)
    if data.ndim == 3:  # MNIST and its kin: (n, H, W), one channel
        data = data[:, None]
    elif data.shape[1:] != shape:  # CIFAR: (n, H, W, C); SVHN is (n, C, H, W) already
        data = data.transpose(0, 3, 1, 2)
    labels = getattr(opened, "targets", None)
    labels = opened.labels if labels is None else labels
    labels = labels.numpy() if hasattr(labels, "numpy") else np.asarray(labels)
    names = getattr(opened, "classes", None) or [str(digit) for digit in range(10)]  # SVHN: digits 0-9
    return np.ascontiguousarray(data, dtype=np.uint8), labels.astype(np.int64), tuple(map(str, names))


# ---- a folder of the user's images ------------------------------------------------------------------


def image_folder(config: DataConfig, rng: np.random.Generator) -> Dataset:
    """The user's images: `train/` and `test/` folders of class folders, or one folder of class folders
    split in a stratified way, seeded by the data seed (`data.params.test_fraction`)."""
    if config.root is None:
        raise UserError("data.root: image_folder reads your images from a folder; set data.root to it")
    root = Path(config.root)
    if not root.is_dir():
        raise UserError(f"data.root: {root} is not a folder (image_folder needs one folder per class)")
    if (root / "train").is_dir() and not (root / "test").is_dir():  # a split layout with val/ (ImageNet's)
        others = sorted(path.name + "/" for path in root.iterdir() if path.is_dir() and path.name != "train")
        raise UserError(f"data.root: {root} has train/ but no test/ (it has {', '.join(others) or 'nothing else'}); "
                        "allowed: train/ and test/ folders of class folders (a validation split comes out of "
                        "train/: train.val_fraction), or one folder of class folders")
    if (root / "train").is_dir() and (root / "test").is_dir():
        x_train, y_train, names = _read_folder(root / "train", config)
        x_test, y_test, test_names = _read_folder(root / "test", config)
        if test_names != names:
            raise UserError(f"data.root: {root / 'test'} has the classes {', '.join(test_names)} but "
                            f"{root / 'train'} has {', '.join(names)}; allowed: the same class folders in both")
    else:
        x, y, names = _read_folder(root, config)
        x_train, x_test, y_train, y_test = _stratified(x, y, config, rng, root)
    return Dataset(x_train, y_train, x_test, y_test, "classification", len(names), "image", class_names=names,
                   normalize=pixel_scale(x_train.shape[1]))


def _read_folder(folder: Path, config: DataConfig) -> tuple[np.ndarray, np.ndarray, tuple[str, ...]]:
    """Every image of a folder of class folders, resized to data.image_size square, as uint8."""
    from torchvision.datasets import ImageFolder
    from torchvision.transforms import Compose, PILToTensor, Resize

    size = config.image_size
    loader = _grayscale_loader if config.params.get("grayscale") else None
    try:
        found = ImageFolder(str(folder), transform=Compose([Resize((size, size)), PILToTensor()]),
                            **({"loader": loader} if loader else {}))
    except (FileNotFoundError, OSError) as error:
        raise UserError(f"data.root: {str(error).splitlines()[0]}") from None
    names = tuple(found.classes)
    raise_problems([class_problem(names, f"data.root: {folder}")])
    images = np.empty((len(found), 1 if loader else 3, size, size), np.uint8)
    for index, (path, _) in enumerate(found.samples):
        try:
            images[index] = found[index][0].numpy()
        except OSError:
            raise UserError(f"data.root: cannot read {path} as an image") from None
    return images, np.asarray(found.targets, np.int64), names


def _grayscale_loader(path: str):
    from PIL import Image

    with open(path, "rb") as file:
        return Image.open(file).convert("L")


def _stratified(x: np.ndarray, y: np.ndarray, config: DataConfig, rng: np.random.Generator, root: Path):
    from sklearn.model_selection import train_test_split

    try:
        return train_test_split(x, y, test_size=config.params["test_fraction"], stratify=y,
                                random_state=int(rng.integers(0, 2**31 - 1)))
    except ValueError as error:
        raise UserError(f"data.params.test_fraction: cannot split the {len(x)} images of {root} by class: "
                        f"{error}; allowed: more images per class, or train/ and test/ folders") from None


IMAGE_DATASETS: dict[str, Callable[[DataConfig, np.random.Generator], Dataset]] = {
    **{name: torchvision_set for name in TORCHVISION},
    "image_folder": image_folder,
}

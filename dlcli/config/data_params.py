"""The parameters of each data set (`data.params`): one model per data set, validated against the
chosen `data.name` (dlcli.config.problems), and the names of the data sets."""
from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field

from dlcli.config.types import Integer, Number, Section


class GaussiansParams(Section):
    """K isotropic Gaussian classes with equal priors, their means on a line `separation` apart.

    Bayes error 2(K−1)/K · Φ(−separation/(2σ)); Φ(−separation/(2σ)) for 2 classes.
    """

    classes: Annotated[Integer, Field(ge=2, description="number of classes K, means evenly spaced on a line")] = 2
    dim: Annotated[Integer, Field(ge=1, description="input dimension")] = 2
    separation: Annotated[Number, Field(ge=0, description="distance between neighbouring class means")] = 2.0
    sigma: Annotated[Number, Field(gt=0, description="standard deviation σ of every class (isotropic)")] = 1.0


class SineParams(Section):
    """Regression: y = sin(π x₁) + N(0, noise²), x uniform on [−1, 1]^dim. Bayes error = noise²."""

    dim: Annotated[Integer, Field(ge=1, description="inputs; y depends on the first, the rest are distractors")] = 1
    noise: Annotated[Number, Field(ge=0, description="std of the Gaussian noise on y; Bayes error = noise²")] = 0.1


class MoonsParams(Section):
    """scikit-learn's two moons: two interleaved half circles, a curved boundary."""

    noise: Annotated[Number, Field(ge=0, description="std of the Gaussian noise added to the points")] = 0.2


class SplitParams(Section):
    """A fixed scikit-learn set (digits: 1797 8×8 images; breast_cancer: 569 × 30, binary), split in two."""

    test_fraction: Annotated[Number, Field(
        gt=0, lt=1, description="fraction held out as the test set: a stratified split seeded by the data seed")] = 0.25


class Mnist1dParams(Section):
    """MNIST-1D, generated offline by the `mnist1d` package: 10 classes of signals of length 40. Generating
    takes a few seconds, once per set of parameters: the arrays are kept in the per-user cache folder
    ($XDG_CACHE_HOME/dlcli/data/generated, else ~/.cache/dlcli/data/generated) and read from there after."""

    num_samples: Annotated[Integer, Field(ge=20, description="samples generated, train + test")] = 5000
    train_split: Annotated[Number, Field(gt=0, lt=1, description="fraction of them used for training")] = 0.8
    seed: Annotated[Integer, Field(
        ge=0, lt=2**32, description="the generator's seed (NumPy's: 0 ≤ seed < 2**32); 42 gives the standard "
                                    "MNIST-1D")] = 42


Task = Literal["auto", "classification", "regression"]
TASK_HELP = "`auto`: integer or text targets are classes, float targets regression"


class CsvParams(Section):
    """Your own table: a CSV file with a header row and numeric feature columns."""

    path: Annotated[str, Field(
        description="CSV file with a header row; relative paths start at the config file's folder")]
    target: Annotated[str | None, Field(description="target column (`null`: the last one)")] = None
    test_path: Annotated[str | None, Field(
        description="separate test file; without it a seeded random split of `path`")] = None
    test_fraction: Annotated[Number, Field(
        gt=0, lt=1, description="without `test_path`: the fraction of `path` held out as the test set")] = 0.2
    task: Annotated[Task, Field(description=TASK_HELP)] = "auto"


class NpzParams(Section):
    """Your own arrays: an .npz file with a fixed train/test split."""

    path: Annotated[str, Field(
        description=".npz with arrays `x`, `y`, `x_test`, `y_test`; relative paths start at the config file's folder")]
    task: Annotated[Task, Field(description=TASK_HELP)] = "auto"


class ImageParams(Section):
    """A torchvision image set, read from `data.root` (no parameters of its own): MNIST, Fashion-MNIST and
    KMNIST (1×28×28), CIFAR-10/100 and SVHN (3×32×32), with their official test sets; see docs/real-data.md."""


class ImageFolderParams(Section):
    """Your own images: `data.root` holds one folder per class (torchvision's ImageFolder), or `train/` and
    `test/` folders that each hold one per class; every image resized to `data.image_size` pixels square."""

    test_fraction: Annotated[Number, Field(
        gt=0, lt=1, description="without `train/` and `test/` folders: the fraction held out as the test set, "
                                "a stratified split seeded by the data seed")] = 0.2
    grayscale: Annotated[bool, Field(description="read the images as one channel (else RGB, 3 channels)")] = False


IMAGE_SETS = ("mnist", "fashion_mnist", "kmnist", "cifar10", "cifar100", "svhn")  # torchvision's, under data.root
DATA_PARAMS: dict[str, type[Section]] = {
    "gaussians": GaussiansParams,
    "sine": SineParams,
    "moons": MoonsParams,
    "digits": SplitParams,
    "breast_cancer": SplitParams,
    "mnist1d": Mnist1dParams,
    "csv": CsvParams,
    "npz": NpzParams,
    **{name: ImageParams for name in IMAGE_SETS},
    "image_folder": ImageFolderParams,
}
GENERATED = ("gaussians", "sine", "moons", "mnist1d")  # data sets that can draw a fresh training set
DataName = Literal["gaussians", "sine", "moons", "digits", "breast_cancer", "mnist1d", "csv", "npz", "mnist",
                   "fashion_mnist", "kmnist", "cifar10", "cifar100", "svhn", "image_folder"]

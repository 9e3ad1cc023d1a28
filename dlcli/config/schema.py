"""The config schema: a tree of small typed models, every field with a default and its meaning.

`dlcli.config` reads YAML into it; nothing here reads files.
"""
from __future__ import annotations

import re
from typing import Annotated, Any, Literal

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, PlainValidator


def _reject_bool(value: Any) -> Any:
    # pydantic's lax mode reads `true` as 1; in a config that is always a mistake.
    if isinstance(value, bool):
        raise ValueError("expected a number, got a boolean")
    return value


def _batch_size(value: Any) -> int | str | list | "BatchSchedule":
    """An integer, "full", a list (one per epoch) or a growth schedule {start, factor, every, max}."""
    if isinstance(value, dict):
        return BatchSchedule.model_validate(value)
    if isinstance(value, list) and value:
        return [_one_batch_size(item) for item in value]
    return _one_batch_size(value)


def _one_batch_size(value: Any) -> int | str:
    if value == "full":
        return value
    if isinstance(value, int) and not isinstance(value, bool) and value >= 1:
        return value
    raise ValueError(f"must be an integer >= 1, 'full', a list of them (one per epoch) or "
                     f"{{start, factor, every, max}}, got {value!r}")


def _device(value: Any) -> str:
    if isinstance(value, str) and re.fullmatch(r"auto|cpu|mps|cuda(:\d+)?", value):
        return value
    raise ValueError(f"must be auto, cpu, mps, cuda or cuda:N, got {value!r}")


Number = Annotated[float, BeforeValidator(_reject_bool)]
Integer = Annotated[int, BeforeValidator(_reject_bool)]
BatchSize = Annotated[Any, PlainValidator(_batch_size)]
Device = Annotated[str, PlainValidator(_device)]


class Section(BaseModel):
    model_config = ConfigDict(extra="forbid", validate_default=True)


# ---- per-data-set parameters (data.params) -------------------------------------------------------


class GaussiansParams(Section):
    classes: Annotated[Integer, Field(ge=2)] = 2  # number of classes, means evenly spaced on a line
    dim: Annotated[Integer, Field(ge=1)] = 2  # input dimension
    separation: Annotated[Number, Field(ge=0)] = 2.0  # distance between neighbouring class means
    sigma: Annotated[Number, Field(gt=0)] = 1.0  # standard deviation of every class (isotropic)


class SineParams(Section):
    dim: Annotated[Integer, Field(ge=1)] = 1  # inputs; y depends on the first, the rest are distractors
    noise: Annotated[Number, Field(ge=0)] = 0.1  # std of the Gaussian noise on y; Bayes error = noise²


class MoonsParams(Section):
    noise: Annotated[Number, Field(ge=0)] = 0.2  # std of the Gaussian noise added to the points


class SplitParams(Section):
    test_fraction: Annotated[Number, Field(gt=0, lt=1)] = 0.25  # stratified, seeded by `seed`


class Mnist1dParams(Section):
    num_samples: Annotated[Integer, Field(ge=20)] = 5000  # samples generated, train + test
    train_split: Annotated[Number, Field(gt=0, lt=1)] = 0.8  # fraction of them used for training
    seed: Integer = 42  # the generator's seed; 42 gives the standard MNIST-1D


Task = Literal["auto", "classification", "regression"]


class CsvParams(Section):
    path: str  # CSV file with a header row; relative paths start at the config file's folder
    target: str | None = None  # target column (default: the last one)
    test_path: str | None = None  # separate test file; without it a seeded split of `path`
    test_fraction: Annotated[Number, Field(gt=0, lt=1)] = 0.2
    task: Task = "auto"  # auto: integer or text targets are classes, floats are regression


class NpzParams(Section):
    path: str  # .npz with arrays x, y, x_test, y_test
    task: Task = "auto"


DATA_PARAMS: dict[str, type[Section]] = {
    "gaussians": GaussiansParams,
    "sine": SineParams,
    "moons": MoonsParams,
    "digits": SplitParams,
    "breast_cancer": SplitParams,
    "mnist1d": Mnist1dParams,
    "csv": CsvParams,
    "npz": NpzParams,
}
GENERATED = ("gaussians", "sine", "moons", "mnist1d")  # data sets that can draw a fresh training set
DataName = Literal["gaussians", "sine", "moons", "digits", "breast_cancer", "mnist1d", "csv", "npz"]


# ---- the experiment ------------------------------------------------------------------------------


class Augment(Section):
    """Random changes to each training batch (never to validation or test data)."""

    noise_std: Annotated[Number, Field(ge=0)] = 0.0  # Gaussian noise added to the (standardized) inputs
    shift: Annotated[Integer, Field(ge=0)] = 0  # shift each signal or image by up to ±shift positions
    shift_mode: Literal["circular", "pad"] = "circular"  # wrap around, or fill with zeros


class Resample(Section):
    """Which training set to draw, for estimating variance across training sets (bias-variance)."""

    method: Literal["none", "fresh", "disjoint", "bootstrap"] = "none"  # fresh: a new draw (generated sets)
    index: Annotated[Integer, Field(ge=0)] = 0  # which draw, slice or resample
    count: Annotated[Integer, Field(ge=1)] = 1  # disjoint: how many slices the training pool is cut into


class DataConfig(Section):
    name: DataName = "mnist1d"
    seed: Annotated[Integer, Field(ge=0)] | None = None  # seed of the data alone (None: the experiment's)
    n_train: Annotated[Integer, Field(ge=1)] | None = None  # first n training samples (None = all)
    n_test: Annotated[Integer, Field(ge=1)] | None = None
    label_noise: Annotated[Number, Field(ge=0, le=1)] = 0.0  # fraction of training labels flipped
    standardize: bool = True  # z-score features with training-set statistics
    sort_by_label: bool = False  # order the training set by class (why batches are shuffled)
    params: dict[str, Any] = {}  # per-data-set knobs, see DATA_PARAMS
    augment: Augment = Augment()
    resample: Resample = Resample()


class ModelConfig(Section):
    name: Literal["linear", "mlp", "cnn", "random_features"] = "mlp"
    hidden: list[Annotated[Integer, Field(ge=1)]] = [100, 100]  # widths (mlp) or channels (cnn)
    features: Annotated[Integer, Field(ge=1)] = 100  # random_features: fixed random ReLU features
    activation: Literal["relu", "tanh", "sigmoid", "gelu"] = "relu"
    dropout: Annotated[Number, Field(ge=0, lt=1)] = 0.0  # probability of dropping a unit
    norm: Literal["none", "batch", "layer"] = "none"


class BatchSchedule(Section):
    """Batch size start · factor^⌊(epoch − 1) / every⌋, capped at max: grow the batch, not decay the lr."""

    start: Annotated[Integer, Field(ge=1)]  # batch size in the first epoch
    factor: Annotated[Number, Field(ge=1)] = 2.0  # growth factor
    every: Annotated[Integer, Field(ge=1)] = 1  # epochs between growths
    max: Annotated[Integer, Field(ge=1)] | None = None  # cap (None: up to the whole training set)


class Schedule(Section):
    """The learning rate as a function of the update step (optim.lr is the base rate)."""

    name: Literal["constant", "step", "cosine", "triangular"] = "constant"
    factor: Annotated[Number, Field(gt=0)] = 0.1  # step: multiply the lr by this ...
    every: Annotated[Integer, Field(ge=1)] = 10  # step: ... every this many epochs
    min_lr: Annotated[Number, Field(ge=0)] = 0.0  # cosine: the lr at the last step
    max_lr: Annotated[Number, Field(gt=0)] | None = None  # triangular: the peak (optim.lr is the base)
    step_size: Annotated[Integer, Field(ge=1)] = 500  # triangular: updates per half cycle
    warmup_epochs: Annotated[Integer, Field(ge=0)] = 0  # linear warmup over these epochs, then the above


class LrScaling(Section):
    rule: Literal["none", "linear"] = "none"  # linear: lr × batch_size / base_batch_size (Goyal et al.)
    base_batch_size: Annotated[Integer, Field(ge=1)] = 256


class OptimConfig(Section):
    name: Literal["sgd", "adam", "adamw", "lstsq"] = "sgd"  # lstsq: exact minimum-norm least squares
    lr: Annotated[Number, Field(gt=0)] = 0.1
    momentum: Annotated[Number, Field(ge=0, lt=1)] = 0.0  # sgd only
    batch_size: BatchSize = 32  # samples per update: int, "full", a per-epoch list, or a schedule
    batch_order: Literal["shuffle", "sequential", "stride"] = "shuffle"
    schedule: Schedule = Schedule()
    lr_scaling: LrScaling = LrScaling()


class EarlyStopping(Section):
    patience: Annotated[Integer, Field(ge=1)] | None = None  # epochs without improvement; None: off
    metric: Literal["val_loss", "val_error"] = "val_loss"  # measured on train.val_fraction
    restore_best: bool = True  # end with the weights of the best epoch


class RegularizationConfig(Section):
    l2: Annotated[Number, Field(ge=0)] = 0.0  # λ in + (λ/2)·||W||² added to the loss
    l1: Annotated[Number, Field(ge=0)] = 0.0  # λ in + λ·||W||₁ added to the loss
    weight_decay: Annotated[Number, Field(ge=0)] = 0.0  # decoupled: w ← w − lr·decay·w each step
    early_stopping: EarlyStopping = EarlyStopping()


class TrainConfig(Section):
    epochs: Annotated[Integer, Field(ge=0)] = 20  # passes over the training set
    log_steps: bool = False  # also write steps.csv: one row per update
    val_fraction: Annotated[Number, Field(ge=0, lt=1)] = 0.0  # held out of the training set for validation
    precision: Literal["fp32", "bf16"] = "fp32"  # bf16: autocast the forward pass to bfloat16 (CUDA only)
    compile: bool = False  # torch.compile the model: a fixed start-up cost that only long runs repay


class Experiment(Section):
    name: Annotated[str, Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")] = "experiment"
    seed: Annotated[Integer, Field(ge=0)] = 0
    device: Device = "auto"
    data: DataConfig = DataConfig()
    model: ModelConfig = ModelConfig()
    loss: Literal["cross_entropy", "bce", "mse"] = "cross_entropy"
    optim: OptimConfig = OptimConfig()
    regularization: RegularizationConfig = RegularizationConfig()
    train: TrainConfig = TrainConfig()

"""The config schema: a tree of small typed models, every field with a default and its meaning.

`dlcli.config` reads YAML into it; nothing here reads files. Each field's `description` is its entry in
the config reference, docs/config.md (written by `python docs/generate.py`).
"""
from __future__ import annotations

import re
from typing import Annotated, Any, Literal

from pydantic import Field, PlainValidator, PrivateAttr

from dlcli.config.data_params import DataName
from dlcli.config.types import Integer, Number, Section


def _batch_size(value: Any) -> int | str | list | "BatchSchedule":
    """An integer ≥ 1, `full`, a list of them (one per epoch) or a growth schedule `{start, factor, every, max}`."""
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
    """`auto`, `cpu`, `mps`, `cuda` or `cuda:N`."""
    if isinstance(value, str) and re.fullmatch(r"auto|cpu|mps|cuda(:\d+)?", value):
        return value
    raise ValueError(f"must be auto, cpu, mps, cuda or cuda:N, got {value!r}")


def _checkpoint_every(value: Any) -> int | str:
    """`auto`, or a whole number of epochs ≥ 0 (0: never)."""
    if value == "auto" or (isinstance(value, int) and not isinstance(value, bool) and value >= 0):
        return value
    raise ValueError(f"must be auto or a whole number of epochs >= 0 (0: never), got {value!r}")


def _threads(value: Any) -> int | str:
    """`auto`, or a whole number of threads ≥ 1."""
    if value == "auto" or (isinstance(value, int) and not isinstance(value, bool) and value >= 1):
        return value
    raise ValueError(f"must be auto or a whole number of threads >= 1, got {value!r}")


SEED_LIMIT = 2**63  # torch.manual_seed takes a 64-bit seed; stacked models add small offsets to it

BatchSize = Annotated[Any, PlainValidator(_batch_size)]
CheckpointEvery = Annotated[Any, PlainValidator(_checkpoint_every)]
Device = Annotated[str, PlainValidator(_device)]
Threads = Annotated[Any, PlainValidator(_threads)]


class Augment(Section):
    """Random changes to each training batch (never to validation or test data)."""

    noise_std: Annotated[Number, Field(
        ge=0, description="Gaussian noise of this std added to every training batch's (standardized) inputs")] = 0.0
    shift: Annotated[Integer, Field(
        ge=0, description="shift each training signal (or image, both axes) by a random offset in [−shift, shift]")] = 0
    shift_mode: Annotated[Literal["circular", "pad"], Field(
        description="`circular`: wrap around; `pad`: fill with zeros")] = "circular"
    crop: Annotated[Integer, Field(
        ge=0, description="images: pad each side with this many pixels of zeros (of the normalized input) and crop "
                          "a random window of the original size back out: 4 is the standard CIFAR recipe")] = 0
    flip: Annotated[bool, Field(description="images: mirror each training image left-right with probability 1/2")] = False


class Resample(Section):
    """Which training set to draw, for estimating variance across training sets (bias-variance)."""

    method: Annotated[Literal["none", "fresh", "disjoint", "bootstrap"], Field(
        description="another training set, the test set unchanged: `fresh` (a new draw; generated sets only), "
                    "`disjoint` (slice `index` of `count`), `bootstrap` (drawn with replacement)")] = "none"
    index: Annotated[Integer, Field(ge=0, description="which draw, slice or resample")] = 0
    count: Annotated[Integer, Field(
        ge=1, description="`disjoint`: how many slices the training pool is cut into")] = 1


class DataConfig(Section):
    name: Annotated[DataName, Field(description="the data set; its own parameters go under `data.params`")] = "mnist1d"
    seed: Annotated[Integer, Field(ge=0, lt=SEED_LIMIT)] | None = Field(
        None, description="a seed for the data alone (generation, splits, label noise); "
                          "`null`: the experiment's `seed`; 0 ≤ seed < 2**63")
    n_train: Annotated[Integer, Field(ge=1)] | None = Field(
        None, description="use only the first n training samples (`null`: all; generated sets draw 1000)")
    n_test: Annotated[Integer, Field(ge=1)] | None = Field(
        None, description="use only the first n test samples (`null`: all; generated sets draw 1000)")
    label_noise: Annotated[Number, Field(
        ge=0, le=1, description="fraction of training labels replaced by a uniformly drawn other class "
                                "(exactly round(fraction·n); 1.0 leaves no label right, which is not chance)")] = 0.0
    random_labels: Annotated[bool, Field(
        description="replace every training label by a class drawn uniformly at random, the true one included "
                    "(Zhang et al., arXiv 1611.03530): the test error of any model is at chance")] = False
    standardize: Annotated[bool, Field(
        description="z-score every feature with the training set's mean and std (images: every channel; off, "
                    "their pixels are scaled to [0, 1])")] = True
    root: str | None = Field(
        None, description="image sets: the folder torchvision reads them from (image_folder: your images); `null`: "
                          "$XDG_CACHE_HOME/dlcli/data, else ~/.cache/dlcli/data; relative paths start at the config "
                          "file's folder")
    download: Annotated[bool, Field(
        description="torchvision sets: download a missing one into `data.root` (needs internet)")] = False
    image_size: Annotated[Integer, Field(
        ge=1, description="image_folder: resize every image to this many pixels square")] = 32
    sort_by_label: Annotated[bool, Field(
        description="order the training set by class (why batches are shuffled: with `optim.batch_order: "
                    "sequential` each batch holds one class)")] = False
    params: Annotated[dict[str, Any], Field(
        description="the data set's own parameters, listed under data.params below")] = {}
    augment: Annotated[Augment, Field(description="random changes to each training batch")] = Augment()
    resample: Annotated[Resample, Field(
        description="which training set to draw (what `dlcli bias-variance` varies)")] = Resample()


class ModelConfig(Section):
    name: Annotated[Literal["linear", "mlp", "cnn", "random_features", "resnet18"], Field(
        description="`linear` (logistic / softmax / linear regression), `mlp`, `cnn`, `random_features`: fixed "
                    "random ReLU features max(0, Wx), W ~ N(0, 1/d), and a trainable linear read-out, or "
                    "`resnet18`: the pre-activation ResNet-18 of width `model.width`")] = "mlp"
    hidden: Annotated[list[Annotated[Integer, Field(ge=1)]], Field(
        description="hidden-layer widths (`mlp`) or channels per stride-2 convolution (`cnn` without a "
                    "`width`)")] = [100, 100]
    width: Annotated[Integer, Field(ge=1)] | None = Field(
        None, description="k, the channels of the first of four stages of k, 2k, 4k and 8k (Nakkiran et al., "
                          "arXiv 1912.02292): `resnet18` (`null`: 64, the standard ResNet-18) and `cnn` (their "
                          "5-layer CNN; `null`: the stride-2 CNN of `hidden`)")
    features: Annotated[Integer, Field(
        ge=1, description="`random_features`: how many fixed random ReLU features")] = 100
    activation: Annotated[Literal["relu", "tanh", "sigmoid", "gelu"], Field(
        description="the nonlinearity after each hidden layer")] = "relu"
    dropout: Annotated[Number, Field(
        ge=0, lt=1, description="probability of dropping a unit, rounded to a multiple of 2⁻¹⁶; inverted "
                                "dropout (kept units scaled by 1/(1−p) in training)")] = 0.0
    norm: Annotated[Literal["none", "batch", "layer"], Field(
        description="normalization after each hidden layer: none, batch norm or layer norm")] = "none"


class BatchSchedule(Section):
    """Batch size start · factor^⌊(epoch − 1) / every⌋, capped at max: grow the batch, not decay the lr."""

    start: Annotated[Integer, Field(ge=1, description="batch size in the first epoch")]
    factor: Annotated[Number, Field(ge=1, description="growth factor")] = 2.0
    every: Annotated[Integer, Field(ge=1, description="epochs between growths")] = 1
    max: Annotated[Integer, Field(ge=1)] | None = Field(
        None, description="cap (`null`: up to the whole training set)")


class Schedule(Section):
    """The learning rate as a function of the update step (optim.lr is the base rate)."""

    name: Annotated[Literal["constant", "step", "cosine", "triangular"], Field(
        description="`constant`; `step`: multiply by `factor` every `every` epochs; `cosine`: down to `min_lr`; "
                    "`triangular`: cycle between `optim.lr` and `max_lr`")] = "constant"
    factor: Annotated[Number, Field(gt=0, description="`step`: multiply the lr by this …")] = 0.1
    every: Annotated[Integer, Field(ge=1, description="`step`: … every this many epochs")] = 10
    min_lr: Annotated[Number, Field(
        ge=0, description="`cosine`: the lr at the last update (from `optim.lr` at the first)")] = 0.0
    max_lr: Annotated[Number, Field(gt=0)] | None = Field(
        None, description="`triangular`: the peak, `optim.lr` the base (Smith, arXiv 1506.01186); "
                          "with `lr_scaling` both scale with the batch")
    step_size: Annotated[Integer, Field(ge=1, description="`triangular`: updates per half cycle")] = 500
    warmup_epochs: Annotated[Integer, Field(
        ge=0, description="linear warmup over these epochs before any schedule: update i gets lr·(i+1)/W, "
                          "reaching the scheduled lr at the last warmup update")] = 0


class LrScaling(Section):
    rule: Annotated[Literal["none", "linear"], Field(
        description="`linear`: lr × batch_size / base_batch_size (Goyal et al., arXiv 1706.02677)")] = "none"
    base_batch_size: Annotated[Integer, Field(
        ge=1, description="the batch size at which `optim.lr` holds unscaled")] = 256


class OptimConfig(Section):
    name: Annotated[Literal["sgd", "adam", "adamw", "lstsq"], Field(
        description="`lstsq`: no gradient steps; the read-out of a `linear` or `random_features` model fitted exactly "
                    "by minimum-norm least squares (ridge with `regularization.l2`; needs `loss: mse` and "
                    "`train.epochs: 1`)")] = "sgd"
    lr: Annotated[Number, Field(gt=0, description="learning rate α (the base rate of any schedule)")] = 0.1
    momentum: Annotated[Number, Field(ge=0, lt=1, description="heavy-ball momentum; `sgd` only")] = 0.0
    batch_size: Annotated[BatchSize, Field(
        description="samples per update: `full` = gradient descent (one update per epoch), `1` = plain SGD; a list "
                    "gives one per epoch (the last holds for the rest); a growth schedule, see "
                    "optim.batch_size as a schedule below")] = 32
    batch_order: Annotated[Literal["shuffle", "sequential", "stride"], Field(
        description="`shuffle`: a fresh permutation each epoch; `sequential`: 0, 1, 2, …; `stride`: batch k takes "
                    "k, k+s, k+2s, … with s the number of batches")] = "shuffle"
    schedule: Annotated[Schedule, Field(description="the learning rate against the update step")] = Schedule()
    lr_scaling: Annotated[LrScaling, Field(description="scaling the learning rate with the batch size")] = LrScaling()


class EarlyStopping(Section):
    patience: Annotated[Integer, Field(ge=1)] | None = Field(
        None, description="stop after this many epochs without a better validation metric (`null`: off; needs "
                          "`train.val_fraction`); the run's status is `early_stopped`")
    metric: Annotated[Literal["val_loss", "val_error"], Field(
        description="the validation metric watched, measured on `train.val_fraction`")] = "val_loss"
    restore_best: Annotated[bool, Field(
        description="end with (and save) the weights of the best epoch; the summary's final metrics are "
                    "that epoch's")] = True


class RegularizationConfig(Section):
    l2: Annotated[Number, Field(
        ge=0, description="λ in + (λ/2)·‖W‖² added to the loss, over all parameters")] = 0.0
    l1: Annotated[Number, Field(
        ge=0, description="λ in + λ·‖W‖₁ added to the loss (subgradient λ·sign(w), sign(0) = 0)")] = 0.0
    weight_decay: Annotated[Number, Field(
        ge=0, description="decoupled decay w ← w − lr·decay·w each step, for every optimizer")] = 0.0
    early_stopping: Annotated[EarlyStopping, Field(
        description="stopping when the validation metric stops improving")] = EarlyStopping()


class TrainConfig(Section):
    epochs: Annotated[Integer, Field(
        ge=0, description="passes over the training set (epoch 0 is logged before training)")] = 20
    eval_every: Annotated[Integer, Field(
        ge=1, description="measure loss and error on every split and log a metrics row every N epochs (epoch 0 and "
                          "the last always): a large test set measured every epoch must not dominate a run; early "
                          "stopping then looks at the measured epochs")] = 1
    eval_train_subset: Annotated[Integer, Field(ge=1)] | None = Field(
        None, description="measure the training set's loss and error on a fixed seeded random subset of this many "
                          "samples (`null`: all of it); the last epoch measures all of it, so the final train error "
                          "is exact")
    eval_splits: Annotated[Literal["all", "val"], Field(
        description="the splits measured before the last epoch: `all` (train, test and val), or `val` alone (needs "
                    "`train.val_fraction`): what a search's successive halving and choice read, the test split read "
                    "once, at the end; the last epoch measures every split")] = "all"
    log_steps: Annotated[bool, Field(
        description="also write `steps.csv`: one row per update (step, epoch, batch_size, lr, batch_loss, "
                    "seconds)")] = False
    val_fraction: Annotated[Number, Field(
        ge=0, lt=1, description="hold out this seeded random fraction of the training set for validation "
                                "(`val_loss`, `val_error` per epoch)")] = 0.0
    precision: Annotated[Literal["fp32", "bf16"], Field(
        description="`bf16`: autocast the forward pass to bfloat16 on a CUDA GPU (refused on the CPU)")] = "fp32"
    compile: Annotated[bool, Field(
        description="`torch.compile` the model: a fixed start-up cost (tens of seconds) that only long runs of a "
                    "larger model repay, mostly on a GPU")] = False
    checkpoint_every: Annotated[CheckpointEvery, Field(
        description="write `checkpoint.pt` every N epochs so that a killed or interrupted run continues where it "
                    "stopped (0: never); `auto`: as often as keeps checkpointing under 5% of the training time")] = "auto"
    threads: Annotated[Threads, Field(
        description="CPU threads torch uses; `auto`: the CPUs this process may use but one, shared between a "
                    "sweep's workers, at least 1 (a thread more than the free cores slows a run several times over; "
                    "on a machine busy with other work, give 1). Linear models and MLPs compute the same numbers "
                    "with any count; a `cnn`'s convolution gradients are summed in an order that depends on it")] = (
        "auto")


class Experiment(Section):
    name: Annotated[str, Field(
        pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]*$",
        description="experiment name: runs go to `<out>/<name>/<run-id>/`; read from a file, it defaults to "
                    "the file's name")] = "experiment"
    seed: Annotated[Integer, Field(
        ge=0, lt=SEED_LIMIT, description="seeds the initial weights, the batch order, dropout, label noise and "
                                         "generated data; 0 ≤ seed < 2**63 (what torch accepts)")] = 0
    device: Annotated[Device, Field(
        description="where to train; `auto`: CUDA if available, else MPS, else the CPU")] = "auto"
    data: Annotated[DataConfig, Field(description="the data set, how much of it, and what is done to it")] = (
        DataConfig())
    model: Annotated[ModelConfig, Field(description="the network")] = ModelConfig()
    loss: Annotated[Literal["cross_entropy", "bce", "mse"], Field(
        description="`cross_entropy`: softmax outputs; `bce`: one sigmoid output, binary data only; `mse`: "
                    "squared distance to the target (one-hot for classes)")] = "cross_entropy"
    optim: Annotated[OptimConfig, Field(description="the optimizer, its learning rate and batch size")] = OptimConfig()
    regularization: Annotated[RegularizationConfig, Field(
        description="penalties and early stopping")] = RegularizationConfig()
    train: Annotated[TrainConfig, Field(description="how long to train, how, and what to log")] = TrainConfig()
    _source: str | None = PrivateAttr(default=None)  # the file it was read from: not config, not hashed

    def read_from(self, path: str) -> Experiment:
        """This experiment, remembering the config file it was read from (for provenance)."""
        copy = self.model_copy()
        copy._source = path
        return copy

    def __eq__(self, other: object) -> bool:
        """The same config is the same experiment, whichever file it was read from."""
        if not isinstance(other, Experiment):
            return NotImplemented
        return self.model_dump() == other.model_dump()

    @property
    def source(self) -> str | None:
        """The config file this experiment was read from, when it was read from one."""
        return self._source

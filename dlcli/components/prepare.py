"""Preparing a run: resolve the device, load the data (checked: dlcli.components.validation), check
that the model will fit in the device's memory (dlcli.components.memory), build the initial model, and
check that they fit together. Nothing is written until this has succeeded.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn

from dlcli.components import losses
from dlcli.components.data import hold_out, load_dataset
from dlcli.components.datasets import Dataset
from dlcli.components.memory import model_memory_problem
from dlcli.components.models import build_model
from dlcli.components.schedules import batch_size_at
from dlcli.config.schema import Experiment
from dlcli.errors import UserError


@dataclass
class Prepared:
    """Everything a run needs, all checked: the data set, the device and the initialized model."""

    experiment: Experiment
    dataset: Dataset
    device: torch.device
    model: nn.Module
    random_state: torch.Tensor  # torch's global CPU generator right after the model was built


def resolve_device(spec: str) -> torch.device:
    """auto = cuda if available, else mps, else cpu; an unavailable device is the user's error."""
    if spec == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        return torch.device("mps" if torch.backends.mps.is_available() else "cpu")
    device = torch.device(spec)
    if device.type == "cuda" and not torch.cuda.is_available():
        raise UserError(f"device: {spec} is not available here (no CUDA GPU; allowed: auto, cpu)")
    if device.type == "cuda" and device.index is not None and device.index >= torch.cuda.device_count():
        raise UserError(f"device: {spec} does not exist (this machine has {torch.cuda.device_count()} GPUs)")
    if device.type == "mps" and not torch.backends.mps.is_available():
        raise UserError(f"device: {spec} is not available here (allowed: auto, cpu)")
    return device


def run_data(experiment: Experiment, force: bool = False) -> Dataset:
    """The data set a run trains on: the configured one, with its validation set held out."""
    dataset = load_dataset(experiment.data, experiment.seed, force)
    return hold_out(dataset, experiment.train.val_fraction, experiment.seed)


def prepare(experiment: Experiment, dataset: Dataset | None = None, force: bool = False) -> Prepared:
    """Load the data (unless given) and build the model, raising `UserError` for anything that does
    not fit; `force`: even when the data or the model look too large for the device's free memory."""
    device = resolve_device(experiment.device)
    dataset = run_data(experiment, force) if dataset is None else dataset
    problems = losses.loss_problems(experiment.loss, dataset.task, dataset.num_classes, experiment.data.name)
    if experiment.train.precision == "bf16" and device.type != "cuda":
        problems.append(f"train.precision: bf16 autocast needs a CUDA device, and this run is on {device.type} "
                        "(allowed here: fp32)")
    problems += _shift_problems(experiment, dataset)
    if dataset.task == "regression" and experiment.data.label_noise > 0:
        problems.append(f"data.label_noise: {experiment.data.name} is a regression data set; it has no labels to flip")
    if dataset.task == "regression" and experiment.data.random_labels:
        problems.append(f"data.random_labels: {experiment.data.name} is a regression data set; it has no labels")
    if problems:
        raise UserError(problems)
    outputs = losses.output_width(experiment.loss, dataset.task, dataset.num_classes)
    splits = [len(x) for x in (dataset.x_train, dataset.x_test, dataset.x_val) if x is not None]
    memory = None if force else model_memory_problem(experiment, dataset.input_shape, outputs, splits, device,
                                                     dataset.x_train.itemsize)
    if memory is not None:  # before the model is built: too large a model fails inside the allocator
        raise UserError(memory)
    torch.manual_seed(experiment.seed)  # the initial weights depend on the seed alone
    model = build_model(experiment.model, dataset.input_shape, outputs).to(device)
    if batch_norm := single_sample_batch_problem(experiment, model, len(dataset.x_train)):
        raise UserError(batch_norm)
    return Prepared(experiment, dataset, device, model, torch.get_rng_state())


def single_sample_batch_problem(experiment: Experiment, model: nn.Module, n: int) -> str | None:
    """Batch norm trains on each batch's own statistics, which a batch of one sample does not have
    (PyTorch stops mid-epoch there): a batch size of 1, or one that leaves a last batch of 1."""
    if not any(isinstance(module, nn.modules.batchnorm._BatchNorm) for module in model.modules()):
        return None
    sizes = sorted({batch_size_at(experiment.optim, epoch, n) for epoch in range(1, experiment.train.epochs + 1)})
    for size in sizes:
        if size == 1 or n % size == 1:
            fits = [b for b in (*range(size - 1, 1, -1)[:1000], *range(size + 1, n + 1)[:1000]) if n % b != 1]
            near = sorted(fits, key=lambda b: abs(b - size))[:2]
            left = "is one sample" if size == 1 else f"leaves a last batch of 1 of the {n} training samples"
            return (f"optim.batch_size: a batch of {size} {left}, which the model's batch norm cannot normalize; "
                    f"allowed: batches of 2 or more, none of 1 left over" + (f" (e.g. {' or '.join(map(str, sorted(near)))})"
                                                                           if near else ""))
    return None


def _shift_problems(experiment: Experiment, dataset: Dataset) -> list[str]:
    """Shifts move signals and images, by at most their length (more would overflow torch's offsets)."""
    shift, name = experiment.data.augment.shift, experiment.data.name
    problems = _image_augment_problems(experiment, dataset)
    if shift == 0:
        return problems
    if dataset.kind == "tabular":
        return problems + [f"data.augment.shift: shifts signals and images; {name} is a table"]
    length = max(dataset.input_shape[-2:]) if dataset.kind == "image" else dataset.input_shape[-1]
    if shift > length:
        return problems + [f"data.augment.shift: {shift} is more than the length of the inputs of {name} ({length}); "
                           f"allowed: 0 to {length}"]
    return problems


def _image_augment_problems(experiment: Experiment, dataset: Dataset) -> list[str]:
    """Crops and flips change images, and a crop pads by at most the image's side."""
    augment, name = experiment.data.augment, experiment.data.name
    if dataset.kind != "image":
        return [f"data.augment.{key}: applies to images; {name} holds {dataset.kind} data"
                for key, used in (("crop", augment.crop > 0), ("flip", augment.flip)) if used]
    side = min(dataset.input_shape[-2:])
    if augment.crop > side:
        return [f"data.augment.crop: {augment.crop} pixels of padding is more than the side of the images of {name} "
                f"({side}); allowed: 0 to {side}"]
    return []


def prepare_all(experiments: list[Experiment], source: str | Path, force: bool = False,
                overrides: list[str] | tuple[str, ...] = ()) -> list[Prepared]:
    """Prepare many runs (a sweep's points), reporting every problem of every one together, each line
    prefixed with where its key came from (`source`, or `--set` for one of `overrides`) and the points
    it concerns. Points with the same data config share one load of the data and its arrays."""
    from dlcli.config.load import blamed
    from dlcli.config.sweep import point_problems

    prepared, problems, datasets = [], {}, {}
    for index, experiment in enumerate(experiments):
        try:
            dataset = datasets.get(data_identity(experiment))
            prepared.append(prepare(experiment, dataset, force))
            datasets.setdefault(data_identity(experiment), prepared[-1].dataset)
        except UserError as error:
            for problem in blamed(error.problems, source, overrides):
                problems.setdefault(problem, []).append(index)
    if problems:
        raise UserError(point_problems(problems, len(experiments)))
    return prepared


def data_identity(experiment: Experiment) -> tuple:
    """What a run's data depend on: the data config, the seed and the validation fraction."""
    return experiment.data.model_dump_json(), experiment.seed, experiment.train.val_fraction

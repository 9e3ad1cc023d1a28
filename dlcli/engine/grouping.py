"""What trains together: the one place that decides which runs share a stacked model
(`dlcli sweep --vectorize`) and which train alone, and builds the models of each training unit.

Points share a stack when their configs differ only in what a stack holds per model: the seed, lr,
momentum, weight decay, L1, L2, dropout rate, lr schedule, early stopping, augmentation, and the data
draw (data.seed, label noise, resample index). Everything else (architecture, data set and size, batch
size, epochs, optimizer, device) sets the shapes and must be the same. Once the data are loaded, a
stack also needs equal data shapes (see `shape_of`). Every registry model stacks, batch norm included
(each model keeps its own batch statistics; conv nets run as grouped convolutions); what has no
stacked form (lstsq, compile, bf16) trains alone as a `SingleModel`.
"""
from __future__ import annotations

import json

import torch

from dlcli.components.conv_models import RESNET_WIDTH
from dlcli.components.datasets import Dataset
from dlcli.components.prepare import Prepared
from dlcli.config.flat import flat_config
from dlcli.config.schema import Experiment
from dlcli.engine.dense import DenseStack, is_dense
from dlcli.engine.interface import Trainable
from dlcli.engine.single import SingleModel
from dlcli.engine.stack import ModelStack

PER_MODEL_KEYS = {"seed", "optim.lr", "optim.momentum", "regularization.weight_decay", "regularization.l1",
                  "regularization.l2", "model.dropout", "data.seed", "data.label_noise", "data.random_labels", "data.resample.index"}
PER_MODEL_SECTIONS = ("optim.schedule.", "optim.lr_scaling.", "regularization.early_stopping.", "data.augment.")
MAX_STACK = 64  # models per stack: memory grows with it, and past this the speed-up has flattened


def group_key(experiment: Experiment) -> str:
    """Equal for points that can train in one stack: their config less the per-model keys."""
    shared = {key: value for key, value in flat_config(experiment).items()
              if key not in PER_MODEL_KEYS and not key.startswith(PER_MODEL_SECTIONS)}
    shared["model.has_dropout"] = experiment.model.dropout > 0  # a Dropout layer or none: the layer list
    return json.dumps(shared, sort_keys=True, default=str)


def stack_problem(experiment: Experiment) -> str | None:
    """Why this experiment cannot train in a stack (it then trains alone), or None."""
    if experiment.optim.name == "lstsq":
        return "optim.name: lstsq (an exact solve, not a gradient step)"
    if experiment.train.compile:
        return "train.compile: true (compiles one model)"
    if experiment.train.precision != "fp32":
        return f"train.precision: {experiment.train.precision} (autocast runs one model)"
    return None


def plan_units(prepared: list[Prepared], vectorize: bool,
               start_epochs: list[int | None] | None = None) -> tuple[list[list[int]], list[str]]:
    """The points' indices in training units (a stack, or one point alone), and notes that say once
    what was stacked and what trains one by one, and why. Points resumed from checkpoints stack only
    with points resumed after the same epoch (`start_epochs`: None for a point that starts afresh)."""
    starts = start_epochs or [None] * len(prepared)
    if not vectorize:
        return [[index] for index in range(len(prepared))], []
    groups: dict[tuple, list[int]] = {}
    alone: dict[str, list[int]] = {}
    for index, point in enumerate(prepared):
        problem = stack_problem(point.experiment)
        if problem:
            alone.setdefault(problem, []).append(index)
        else:
            groups.setdefault((group_key(point.experiment), shape_of(point.dataset), starts[index]), []).append(index)
    units = [members[start:start + MAX_STACK] for members in groups.values()
             for start in range(0, len(members), MAX_STACK)]
    notes = [f"{_points(len(indices))} train one by one: {problem}" for problem, indices in alone.items()]
    stacked = [unit for unit in units if len(unit) > 1]
    if stacked:
        notes.insert(0, f"vectorized: {_points(sum(map(len, stacked)))} train as {len(stacked)} stacked "
                        f"model{'s' if len(stacked) > 1 else ''} (--no-vectorize trains them one by one)")
    units += [[index] for indices in alone.values() for index in indices]
    return sorted(units), notes


def build_models(unit: list[Prepared]) -> Trainable:
    """The models of a training unit: a stack, even of one model (alone or with others, a model then
    takes the same steps; dense models with their backward written out, dlcli.engine.dense), or a
    plain module with torch.optim for what has no stacked form."""
    if len(unit) == 1 and stack_problem(unit[0].experiment):
        point = unit[0]
        # A plain module's dropout draws from torch's global generator: start it where it stood when
        # this model was built (every device seeded with the run's seed), whatever was prepared since.
        torch.set_rng_state(point.random_state)
        torch.cuda.manual_seed_all(point.experiment.seed)
        return SingleModel(point.model, point.experiment)
    models, experiments = [point.model for point in unit], [point.experiment for point in unit]
    return (DenseStack if is_dense(models[0], experiments) else ModelStack)(models, experiments)


def unit_cost(experiments: list[Experiment]) -> float:
    """A rough relative cost of training these points together, from the config alone: models × epochs
    × the weights of the hidden layers (widths multiplied in turn; k, 2k, 4k, 8k channels for a model of
    width k). Orders the work among workers, largest first, so that no worker is left alone with the
    biggest unit at the end."""
    model = experiments[0].model
    widths = {"linear": [1], "random_features": [model.features]}.get(model.name, list(model.hidden))
    if model.name == "resnet18" or (model.name == "cnn" and model.width is not None):
        k = model.width or RESNET_WIDTH
        widths = [k, 2 * k, 4 * k, 8 * k]
    weights = sum(a * b for a, b in zip(widths, widths[1:])) + sum(widths)
    return len(experiments) * max(1, experiments[0].train.epochs) * weights


def shape_of(dataset: Dataset) -> tuple:
    """What must match for data sets to stack: array shapes, kind and task."""
    val = None if dataset.x_val is None else dataset.x_val.shape
    return dataset.x_train.shape, dataset.x_test.shape, val, dataset.kind, dataset.task, dataset.num_classes


def _points(count: int) -> str:
    return f"{count} point{'s' if count != 1 else ''}"

"""Training: check everything, then train epoch by epoch, logging train and test metrics — one run,
or a stack of runs that differ only in per-model values (one loop serves both).

Nothing is written until the config, the data and the model have all been checked. Data lives on the
device; batches index a permutation; metrics are read back to the host once per epoch.
"""
from __future__ import annotations

import time
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Callable

import torch
from torch import Tensor, nn

from dlcli import losses, run_files, schedules
from dlcli.config import Experiment, config_hash
from dlcli.data import Dataset, hold_out, load_dataset
from dlcli.errors import UserError
from dlcli.grouping import stack_problem
from dlcli.loop import Models, make_augment, measure, select_models, stack_splits, train_epoch
from dlcli.models import build_model
from dlcli.results import new_run_dir
from dlcli.run_files import RunFiles
from dlcli.stack import ModelStack, OneModel

DEFAULT_OUT = Path("results")


@dataclass
class Prepared:
    """Everything a run needs, all checked: the data set, the device and the initialized model."""

    experiment: Experiment
    dataset: Dataset
    device: torch.device
    model: nn.Module


@dataclass
class RunResult:
    run_dir: Path
    status: str  # completed | early_stopped | diverged | interrupted (failed runs raise)
    summary: dict[str, Any]


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


def prepare(experiment: Experiment) -> Prepared:
    """Load the data and build the model, raising `UserError` for anything that does not fit."""
    device = resolve_device(experiment.device)
    dataset = hold_out(load_dataset(experiment.data, experiment.seed), experiment.train.val_fraction, experiment.seed)
    problems = losses.loss_problems(experiment.loss, dataset.task, dataset.num_classes, experiment.data.name)
    if experiment.train.precision == "bf16" and device.type != "cuda":
        problems.append(f"train.precision: bf16 autocast needs a CUDA device, and this run is on {device.type} "
                        "(allowed here: fp32)")
    if experiment.data.augment.shift > 0 and dataset.kind == "tabular":
        problems.append(f"data.augment.shift: shifts signals and images; {experiment.data.name} is a table")
    if dataset.task == "regression" and experiment.data.label_noise > 0:
        problems.append(f"data.label_noise: {experiment.data.name} is a regression data set; it has no labels to flip")
    if problems:
        raise UserError(problems)
    torch.manual_seed(experiment.seed)  # the initial weights depend on the seed alone
    outputs = losses.output_width(experiment.loss, dataset.task, dataset.num_classes)
    model = build_model(experiment.model, dataset.input_shape, outputs).to(device)
    return Prepared(experiment, dataset, device, model)


def train(
    experiment: Experiment,
    out_root: str | Path = DEFAULT_OUT,
    on_epoch: Callable[[dict[str, float]], None] | None = None,
) -> RunResult:
    """Train one experiment into a new run directory under <out_root>/<name>/."""
    return run(prepare(experiment), out_root, on_epoch)


def run(
    prepared: Prepared,
    out_root: str | Path = DEFAULT_OUT,
    on_epoch: Callable[[dict[str, float]], None] | None = None,
    run_dir: Path | None = None,
) -> RunResult:
    """Train a prepared experiment; `on_epoch` gets each epoch's metrics row as it is logged.

    The run goes to a new <out_root>/<name>/<timestamp>-<hash>/, or to `run_dir` (which must not exist).
    """
    if run_dir is None:
        run_dir = new_run_dir(Path(out_root), prepared.experiment.name, config_hash(prepared.experiment))
    else:
        run_dir.mkdir(parents=True)
    return _train([run_files.start(prepared, run_dir)], _models([prepared]), on_epoch or (lambda row: None))[0]


def run_stacked(prepared: list[Prepared], run_dirs: list[Path]) -> list[RunResult]:
    """Train experiments that differ only in what a stack varies per model (see dlcli.grouping) as
    one stacked model, writing each run's files as `run` would. The run folders must not exist."""
    for run_dir in run_dirs:
        run_dir.mkdir(parents=True)
    runs = [run_files.start(point, run_dir) for point, run_dir in zip(prepared, run_dirs)]
    return _train(runs, _models(prepared), lambda row: None)


def _models(prepared: list[Prepared]) -> Models:
    """A stack, even of one model: alone or with others, a model then takes the same steps. What has
    no stacked form (batch norm, lstsq, compile, bf16) trains as a plain module with torch.optim."""
    if len(prepared) == 1 and stack_problem(prepared[0].experiment):
        return OneModel(prepared[0].model, prepared[0].experiment)
    return ModelStack([point.model for point in prepared], [point.experiment for point in prepared])


def _train(runs: list[RunFiles], models: Models, on_epoch: Callable) -> list[RunResult]:
    """The epoch loop, for one run or a stack of them: each run ends on its own (diverged, stopped
    early) and leaves the stack; the others go on."""
    lead = runs[0].prepared  # shapes, epochs and batch sizes are the same for every run of a stack
    split = stack_splits([run.prepared.dataset for run in runs], lead.device)
    epochs = lead.experiment.train.epochs
    run_plan = schedules.plan(lead.experiment.optim, epochs, split["x_train"].shape[1])
    generators = [torch.Generator().manual_seed(run.experiment.seed) for run in runs]  # batch order
    augments = _augments(runs)
    active, step, started = list(runs), 0, time.perf_counter()
    lrs = [schedules.lr_at(run.experiment.optim, run_plan, 0) if run_plan.total_steps else run.experiment.optim.lr
           for run in runs]
    try:
        for epoch in range(epochs + 1):  # epoch 0 measures the initial models
            updates = None
            if epoch > 0:
                updates = train_epoch(models, split, [run.experiment for run in active], generators, run_plan,
                                      epoch, augments)
                run_files.log_steps(active, updates, epoch, step, started)
                step, lrs = step + len(updates.batch_sizes), [model_lrs[-1] for model_lrs in updates.lrs]
            sums = updates.batch_losses.sum(0) if updates else None
            measured, snapshot = measure(models, split, lead.experiment.loss, sums), models.snapshot()
            for m, (run, lr, values) in enumerate(zip(active, lrs, measured)):
                _record(run, (snapshot, m), {"epoch": epoch, "step": step, "lr": lr}, values, started, on_epoch)
            going = [m for m, run in enumerate(active) if run.status is None]
            for run in active:
                if run.status is not None:
                    run_files.close(run, started)
            if len(going) < len(active):
                if not going:
                    break
                models.keep(going)
                split = select_models(split, going)
                active, lrs = [active[m] for m in going], [lrs[m] for m in going]
                generators = [generators[m] for m in going]
                augments = None if augments is None else [augments[m] for m in going]
    except KeyboardInterrupt:
        for run in active:
            if run.status is None:
                run.end("interrupted", f"interrupted after {max(len(run.rows) - 1, 0)} completed epochs")
    except Exception as error:  # a bug or a resource failure: record it, keep the epochs, then raise
        for run in active:
            run_files.fail(run, error, started)
        raise
    for run in runs:
        if run.summary is None:
            run.status = run.status or "completed"
            run_files.close(run, started)
    return [RunResult(run.run_dir, run.status, run.summary) for run in runs]


def _record(run: RunFiles, snapshot: tuple[dict[str, Tensor], int], position: dict[str, Any],
            measured: dict[str, float] | None, started: float, on_epoch: Callable) -> None:
    """Log a model's epoch, or end its run: diverged, or stopped early."""
    epoch = position["epoch"]
    if measured is None:
        run.end("diverged", _divergence_message(epoch, run.experiment))
        return
    row = {**position, **measured, "seconds": time.perf_counter() - started}
    run.log.append(row)
    run.rows.append(row)
    run.snapshot = snapshot
    on_epoch(row)
    if run.stopper.should_stop(row, run.snapshot):
        run.end("early_stopped", run.stopper.message(epoch))


def _augments(runs: list[RunFiles]) -> list[Callable[[Tensor], Tensor]] | None:
    """Each run's augmentation of its training batches (its own random stream), or None."""
    augments = [make_augment(run.experiment.data.augment, run.prepared.dataset.kind, run.prepared.device,
                             run.experiment.seed) for run in runs]
    return None if all(augment is None for augment in augments) else [augment or (lambda x: x) for augment in augments]








def estimate_seconds(experiments: list[Experiment], probe_steps: int = 20) -> float:
    """Time a few updates and one evaluation of experiments that train together (one alone, or a
    stack), in memory (nothing is written), and extrapolate to their whole run."""
    prepared = [prepare(experiment) for experiment in experiments]
    lead = experiments[0]
    n = len(prepared[0].dataset.x_train)
    run_plan = schedules.plan(lead.optim, max(1, lead.train.epochs), n)
    size = run_plan.batch_sizes[0]
    probe = min(probe_steps, run_plan.steps_per_epoch[0])
    if lead.optim.name == "lstsq":  # one solve on all the data is the whole run
        size, probe, run_plan = n, 1, schedules.Plan((n,), (1,))
    probe_data = [replace(point.dataset, x_train=point.dataset.x_train[: probe * size],
                          y_train=point.dataset.y_train[: probe * size]) for point in prepared]
    probe_plan = schedules.plan(lead.optim, 1, probe * size)
    models = _models(prepared)
    device = prepared[0].device
    probe_split = stack_splits(probe_data, device)
    full_split = stack_splits([point.dataset for point in prepared], device)
    timings = []
    for _ in range(2):  # the first pass warms up allocators and kernels; time the second
        started = time.perf_counter()
        train_epoch(models, probe_split, experiments, [torch.Generator() for _ in experiments], probe_plan, 1)
        middle = time.perf_counter()
        measure(models, full_split, lead.loss, None)
        timings.append(((middle - started) / probe, time.perf_counter() - middle))
    per_step, per_evaluation = timings[-1]
    epochs = lead.train.epochs
    return run_plan.total_steps * per_step * (epochs > 0) + (epochs + 1) * per_evaluation


def _divergence_message(epoch: int, experiment: Experiment) -> str:
    if epoch == 0:
        return "the loss is not finite at initialization"
    return (f"loss became NaN or infinite in epoch {epoch} (optim.lr = {experiment.optim.lr}); "
            f"kept epochs 0-{epoch - 1}")







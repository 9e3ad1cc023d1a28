"""One training run: check everything, then train epoch by epoch, logging train and test metrics.

Nothing is written until the config, the data and the model have all been checked. Data lives on the
device; batches index a permutation; metrics are read back to the host once per epoch.
"""
from __future__ import annotations

import io
import time
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Callable

import torch
from torch import Tensor, nn

import dlcli
from dlcli import losses, schedules
from dlcli.config import Experiment, config_hash, flat_config, to_yaml
from dlcli.data import Dataset, hold_out, load_dataset
from dlcli.early_stopping import EarlyStopper
from dlcli.errors import UserError
from dlcli.grouping import stack_problem
from dlcli.loop import EpochUpdates, Models, make_augment, measure, select_models, stack_splits, train_epoch
from dlcli.models import build_model, parameter_count
from dlcli.stack import ModelStack, OneModel, unstack
from dlcli.results import MetricsLog, atomic_write_bytes, atomic_write_json, atomic_write_text, new_run_dir

DEFAULT_OUT = Path("results")
STEP_COLUMNS = ["step", "epoch", "batch_size", "lr", "batch_loss", "seconds"]


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
    return _train([_start(prepared, run_dir)], _models([prepared]), on_epoch or (lambda row: None))[0]


def run_stacked(prepared: list[Prepared], run_dirs: list[Path]) -> list[RunResult]:
    """Train experiments that differ only in what a stack varies per model (see dlcli.grouping) as
    one stacked model, writing each run's files as `run` would. The run folders must not exist."""
    for run_dir in run_dirs:
        run_dir.mkdir(parents=True)
    runs = [_start(point, run_dir) for point, run_dir in zip(prepared, run_dirs)]
    return _train(runs, _models(prepared), lambda row: None)


def _models(prepared: list[Prepared]) -> Models:
    """A stack, even of one model: alone or with others, a model then takes the same steps. What has
    no stacked form (batch norm, lstsq, compile, bf16) trains as a plain module with torch.optim."""
    if len(prepared) == 1 and stack_problem(prepared[0].experiment):
        return OneModel(prepared[0].model, prepared[0].experiment)
    return ModelStack([point.model for point in prepared], [point.experiment for point in prepared])


@dataclass
class _Run:
    """One run's files and progress while it trains (alone or in a stack)."""

    prepared: Prepared
    run_dir: Path
    header: dict[str, Any]
    log: MetricsLog
    steps_log: MetricsLog | None
    stopper: EarlyStopper
    rows: list[dict[str, Any]] = field(default_factory=list)
    snapshot: tuple[dict[str, Tensor], int] | None = None  # (all models' last state, this run's index)
    status: str | None = None  # set when the run ends
    message: str | None = None
    summary: dict[str, Any] | None = None  # written when the run ends

    @property
    def experiment(self) -> Experiment:
        return self.prepared.experiment

    def end(self, status: str, message: str | None = None) -> None:
        self.status, self.message = status, message


def _start(prepared: Prepared, run_dir: Path) -> _Run:
    """Write the run's config and a 'running' summary; open its logs."""
    experiment = prepared.experiment
    atomic_write_text(run_dir / "config.yaml", to_yaml(experiment))
    header = _summary_header(prepared, run_dir, config_hash(experiment))
    atomic_write_json(run_dir / "summary.json", {**header, "status": "running"})
    log = MetricsLog(run_dir / "metrics.csv", metric_columns(prepared.dataset.x_val is not None))
    steps_log = MetricsLog(run_dir / "steps.csv", STEP_COLUMNS) if experiment.train.log_steps else None
    return _Run(prepared, run_dir, header, log, steps_log, EarlyStopper(experiment.regularization.early_stopping))


def _train(runs: list[_Run], models: Models, on_epoch: Callable) -> list[RunResult]:
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
                _log_steps(active, updates, epoch, step, started)
                step, lrs = step + len(updates.batch_sizes), [model_lrs[-1] for model_lrs in updates.lrs]
            sums = updates.batch_losses.sum(0) if updates else None
            measured, snapshot = measure(models, split, lead.experiment.loss, sums), models.snapshot()
            for m, (run, lr, values) in enumerate(zip(active, lrs, measured)):
                _record(run, (snapshot, m), {"epoch": epoch, "step": step, "lr": lr}, values, started, on_epoch)
            going = [m for m, run in enumerate(active) if run.status is None]
            for run in active:
                if run.status is not None:
                    _close(run, started)
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
            if run.summary is None:
                failed = _final_summary(run.header, run.rows, "failed", f"{type(error).__name__}: {error}",
                                        time.perf_counter() - started)
                atomic_write_json(run.run_dir / "summary.json", failed)
                _close_logs(run)
        raise
    for run in runs:
        if run.summary is None:
            run.status = run.status or "completed"
            _close(run, started)
    return [RunResult(run.run_dir, run.status, run.summary) for run in runs]


def _record(run: _Run, snapshot: tuple[dict[str, Tensor], int], position: dict[str, Any],
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


def _close(run: _Run, started: float) -> None:
    """Write the run's weights (the best epoch's, when early stopping restores them) and summary."""
    if run.summary is not None:
        return
    restored = run.stopper.restore()
    kept = run.stopper.best_state if restored is not None else run.snapshot
    snapshot = unstack(*kept) if kept is not None else None
    _close_logs(run)
    if snapshot is not None:
        atomic_write_bytes(run.run_dir / "model.pt", _serialize(snapshot))
    summary = _final_summary(run.header, run.rows, run.status, run.message, time.perf_counter() - started, restored)
    summary["sparsity"] = sparsity(snapshot) if snapshot is not None else None
    atomic_write_json(run.run_dir / "summary.json", summary)
    run.summary = summary


def _close_logs(run: _Run) -> None:
    for log in (run.log, run.steps_log):
        if log is not None:
            log.close()


def _augments(runs: list[_Run]) -> list[Callable[[Tensor], Tensor]] | None:
    """Each run's augmentation of its training batches (its own random stream), or None."""
    augments = [make_augment(run.experiment.data.augment, run.prepared.dataset.kind, run.prepared.device,
                             run.experiment.seed) for run in runs]
    return None if all(augment is None for augment in augments) else [augment or (lambda x: x) for augment in augments]


def _log_steps(runs: list[_Run], updates: EpochUpdates, epoch: int, first_step: int, started: float) -> None:
    """steps.csv rows: one read-back of the epoch's batch losses, then plain numbers."""
    if not any(run.steps_log for run in runs):
        return
    batch_losses = updates.batch_losses.T.tolist()  # [M][steps]
    for m, run in enumerate(runs):
        if run.steps_log:
            run.steps_log.append_many([
                {"step": first_step + i + 1, "epoch": epoch, "batch_size": size, "lr": lr, "batch_loss": loss,
                 "seconds": moment - started}
                for i, (size, lr, loss, moment) in enumerate(zip(updates.batch_sizes, updates.lrs[m],
                                                                  batch_losses[m], updates.times))])


def metric_columns(validation: bool) -> list[str]:
    """metrics.csv's columns: val_* only when part of the training set is held out."""
    val = ["val_loss", "val_error"] if validation else []
    return ["epoch", "step", "lr", "train_loss", "train_error", "test_loss", "test_error", *val,
            "weight_norm", "seconds"]


def sparsity(state: dict[str, Tensor], threshold: float = 1e-3) -> float:
    """Fraction of the weights (every floating-point entry of the state) with |w| < threshold."""
    tensors = [value for value in state.values() if value.is_floating_point()]
    small = sum(int((value.abs() < threshold).sum()) for value in tensors)
    return small / max(1, sum(value.numel() for value in tensors))


def estimate_seconds(experiment: Experiment, probe_steps: int = 20) -> float:
    """Time a few updates and one evaluation in memory (nothing is written) and extrapolate."""
    prepared = prepare(experiment)
    n = len(prepared.dataset.x_train)
    run_plan = schedules.plan(experiment.optim, max(1, experiment.train.epochs), n)
    size = run_plan.batch_sizes[0]
    probe = min(probe_steps, run_plan.steps_per_epoch[0])
    if experiment.optim.name == "lstsq":  # one solve on all the data is the whole run
        size, probe, run_plan = n, 1, schedules.Plan((n,), (1,))
    probe_data = replace(prepared.dataset, x_train=prepared.dataset.x_train[: probe * size],
                         y_train=prepared.dataset.y_train[: probe * size])
    probe_plan = schedules.plan(experiment.optim, 1, probe * size)
    models = OneModel(prepared.model, experiment)
    probe_split, full_split = stack_splits([probe_data], prepared.device), stack_splits([prepared.dataset], prepared.device)
    timings = []
    for _ in range(2):  # the first pass warms up allocators and kernels; time the second
        started = time.perf_counter()
        train_epoch(models, probe_split, [experiment], [torch.Generator()], probe_plan, 1)
        middle = time.perf_counter()
        measure(models, full_split, experiment.loss, None)
        timings.append(((middle - started) / probe, time.perf_counter() - middle))
    per_step, per_evaluation = timings[-1]
    epochs = experiment.train.epochs
    return run_plan.total_steps * per_step * (epochs > 0) + (epochs + 1) * per_evaluation


def _divergence_message(epoch: int, experiment: Experiment) -> str:
    if epoch == 0:
        return "the loss is not finite at initialization"
    return (f"loss became NaN or infinite in epoch {epoch} (optim.lr = {experiment.optim.lr}); "
            f"kept epochs 0-{epoch - 1}")


def _serialize(state_dict: dict[str, Tensor]) -> bytes:
    buffer = io.BytesIO()
    torch.save({key: value.cpu() for key, value in state_dict.items()}, buffer)
    return buffer.getvalue()


def _summary_header(prepared: Prepared, run_dir: Path, digest: str) -> dict[str, Any]:
    experiment = prepared.experiment
    return {
        "run_id": run_dir.name,
        "name": experiment.name,
        "seed": experiment.seed,
        "config_hash": digest,
        "data": experiment.data.name,
        "n_train": len(prepared.dataset.x_train),
        "n_test": len(prepared.dataset.x_test),
        "bayes_error": prepared.dataset.bayes_error,
        "parameters": parameter_count(prepared.model),
        "device": str(prepared.device),
        "torch_version": torch.__version__,
        "dlcli_version": dlcli.__version__,
        "started": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "config": flat_config(experiment),  # lets `compare` read one file per run
    }


def _final_summary(header: dict, rows: list[dict], status: str, message: str | None, seconds: float,
                   restored: dict | None = None) -> dict:
    ran = rows[-1] if rows else {}
    final = restored or ran  # the metrics of the weights the run ends with (and model.pt holds)
    best = min(rows, key=lambda row: row["test_error"]) if rows else {}
    return {
        **header,
        "status": status,
        "message": message,
        "epochs_run": ran.get("epoch", 0),
        "steps": ran.get("step", 0),
        "restored_epoch": restored["epoch"] if restored else None,
        **{key: final.get(key) for key in ("train_loss", "train_error", "test_loss", "test_error",
                                           "val_loss", "val_error", "weight_norm")},
        "gap": final["test_error"] - final["train_error"] if rows else None,
        "best_test_error": best.get("test_error"),
        "best_epoch": best.get("epoch"),
        "seconds": seconds,
    }

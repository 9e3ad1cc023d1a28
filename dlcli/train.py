"""One training run: check everything, then train epoch by epoch, logging train and test metrics.

Nothing is written until the config, the data and the model have all been checked. Data lives on the
device; batches index a permutation; metrics are read back to the host once per epoch.
"""
from __future__ import annotations

import io
import time
from dataclasses import dataclass, replace
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
from dlcli.loop import EpochUpdates, make_augment, measure, to_device, train_epoch
from dlcli.models import build_model, parameter_count
from dlcli.optimizers import build_optimizer
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
    experiment = prepared.experiment
    digest = config_hash(experiment)
    if run_dir is None:
        run_dir = new_run_dir(Path(out_root), experiment.name, digest)
    else:
        run_dir.mkdir(parents=True)
    atomic_write_text(run_dir / "config.yaml", to_yaml(experiment))
    header = _summary_header(prepared, run_dir, digest)
    atomic_write_json(run_dir / "summary.json", {**header, "status": "running"})
    return _run(prepared, run_dir, header, on_epoch or (lambda row: None))


def _run(prepared: Prepared, run_dir: Path, header: dict, on_epoch: Callable) -> RunResult:
    experiment, model = prepared.experiment, prepared.model
    split = to_device(prepared.dataset, prepared.device)
    run_plan = schedules.plan(experiment.optim, experiment.train.epochs, len(split["x_train"]))
    optimizer = build_optimizer(model.parameters(), experiment.optim, experiment.regularization.weight_decay)
    generator = torch.Generator().manual_seed(experiment.seed)  # batch order, apart from the init
    augment = make_augment(experiment.data.augment, prepared.dataset.kind, prepared.device, experiment.seed)
    log = MetricsLog(run_dir / "metrics.csv", metric_columns("x_val" in split))
    steps_log = MetricsLog(run_dir / "steps.csv", STEP_COLUMNS) if experiment.train.log_steps else None
    stopper = EarlyStopper(experiment.regularization.early_stopping)
    # The compiled module shares the model's parameters; snapshots keep the plain model's key names.
    forward = torch.compile(model) if experiment.train.compile else model
    started = time.perf_counter()
    rows, snapshot, step, status, message = [], None, 0, "completed", None
    lr = schedules.lr_at(experiment.optim, run_plan, 0) if run_plan.total_steps else experiment.optim.lr
    try:
        for epoch in range(experiment.train.epochs + 1):  # epoch 0 measures the initial model
            updates = None
            if epoch > 0:
                updates = train_epoch(forward, optimizer, split, experiment, generator, run_plan, epoch, augment)
                if steps_log:
                    steps_log.append_many(_step_rows(updates, epoch, step, started))
                step, lr = step + len(updates.lrs), updates.lrs[-1]
            measured = measure(forward, split, experiment.loss, updates.batch_losses.sum() if updates else None)
            if measured is None:
                status, message = "diverged", _divergence_message(epoch, experiment)
                break
            row = {"epoch": epoch, "step": step, "lr": lr, **measured, "seconds": time.perf_counter() - started}
            log.append(row)
            rows.append(row)
            snapshot = {key: value.detach().clone() for key, value in model.state_dict().items()}
            on_epoch(row)
            if stopper.should_stop(row, snapshot):
                status, message = "early_stopped", stopper.message(epoch)
                break
    except KeyboardInterrupt:
        status, message = "interrupted", f"interrupted after {max(len(rows) - 1, 0)} completed epochs"
    except Exception as error:  # a bug or a resource failure: record it, keep the epochs, then raise
        failed = _final_summary(header, rows, "failed", f"{type(error).__name__}: {error}",
                                time.perf_counter() - started)
        atomic_write_json(run_dir / "summary.json", failed)
        raise
    restored = stopper.restore()
    if restored is not None:
        snapshot = stopper.best_state
    if snapshot is not None:
        atomic_write_bytes(run_dir / "model.pt", _serialize(snapshot))
    summary = _final_summary(header, rows, status, message, time.perf_counter() - started, restored)
    summary["sparsity"] = sparsity(snapshot) if snapshot is not None else None
    atomic_write_json(run_dir / "summary.json", summary)
    return RunResult(run_dir, status, summary)


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


def _step_rows(updates: EpochUpdates, epoch: int, first_step: int, started: float) -> list[dict[str, Any]]:
    """steps.csv rows: one read-back of the epoch's batch losses, then plain numbers."""
    batch_losses = updates.batch_losses.tolist()
    return [{"step": first_step + i + 1, "epoch": epoch, "batch_size": size, "lr": lr, "batch_loss": loss,
             "seconds": moment - started}
            for i, (size, lr, loss, moment) in enumerate(zip(updates.batch_sizes, updates.lrs, batch_losses,
                                                              updates.times))]


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
    optimizer = build_optimizer(prepared.model.parameters(), experiment.optim, experiment.regularization.weight_decay)
    probe_split, full_split = to_device(probe_data, prepared.device), to_device(prepared.dataset, prepared.device)
    timings = []
    for _ in range(2):  # the first pass warms up allocators and kernels; time the second
        started = time.perf_counter()
        train_epoch(prepared.model, optimizer, probe_split, experiment, torch.Generator(), probe_plan, 1)
        middle = time.perf_counter()
        measure(prepared.model, full_split, experiment.loss, None)
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

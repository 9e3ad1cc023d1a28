"""A run's files while it trains, alone or in a stack of models.

At the start: config.yaml and a summary.json with status 'running'. Every epoch: a row appended to
metrics.csv (and the epoch's updates to steps.csv), flushed. At the end: model.pt (the final weights,
or the best epoch's when early stopping restores them) and the final summary.json, both written
atomically.
"""
from __future__ import annotations

import io
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch
from torch import Tensor

import dlcli
from dlcli.config import Experiment, config_hash, flat_config, to_yaml
from dlcli.early_stopping import EarlyStopper
from dlcli.loop import EpochUpdates
from dlcli.models import parameter_count
from dlcli.results import MetricsLog, atomic_write_bytes, atomic_write_json, atomic_write_text
from dlcli.stack import unstack

if TYPE_CHECKING:
    from dlcli.train import Prepared

STEP_COLUMNS = ["step", "epoch", "batch_size", "lr", "batch_loss", "seconds"]


@dataclass
class RunFiles:
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


def start(prepared: Prepared, run_dir: Path) -> RunFiles:
    """Write the run's config and a 'running' summary; open its logs."""
    experiment = prepared.experiment
    atomic_write_text(run_dir / "config.yaml", to_yaml(experiment))
    header = _summary_header(prepared, run_dir, config_hash(experiment))
    atomic_write_json(run_dir / "summary.json", {**header, "status": "running"})
    log = MetricsLog(run_dir / "metrics.csv", metric_columns(prepared.dataset.x_val is not None))
    steps_log = MetricsLog(run_dir / "steps.csv", STEP_COLUMNS) if experiment.train.log_steps else None
    return RunFiles(prepared, run_dir, header, log, steps_log, EarlyStopper(experiment.regularization.early_stopping))


def close(run: RunFiles, started: float) -> None:
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


def fail(run: RunFiles, error: BaseException, started: float) -> None:
    """Record a run that broke (a bug, a resource failure): its epochs stay, the summary says why."""
    if run.summary is None:
        run.summary = _final_summary(run.header, run.rows, "failed", f"{type(error).__name__}: {error}",
                                     time.perf_counter() - started)
        atomic_write_json(run.run_dir / "summary.json", run.summary)
        _close_logs(run)


def _close_logs(run: RunFiles) -> None:
    for log in (run.log, run.steps_log):
        if log is not None:
            log.close()


def log_steps(runs: list[RunFiles], updates: EpochUpdates, epoch: int, first_step: int, started: float) -> None:
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

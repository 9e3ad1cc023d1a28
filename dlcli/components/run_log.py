"""A run's files while it trains, alone or in a stack of models: `RunLog` is their only writer (and
`interrupt_moved`, for a run a search stopped between two training units).

start (the constructor): config.yaml and a summary.json with status 'running'; record: a row appended
to metrics.csv per epoch (and the epoch's updates to steps.csv), flushed; finish: model.pt and the
final summary.json, both written atomically; fail: the summary says what broke. What each file holds
is `dlcli.layout`'s docstring.
"""
from __future__ import annotations

import json
import os
import socket
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from torch import Tensor

import dlcli
from dlcli import layout
from dlcli.components.checkpoints import read_checkpoint, read_rows, save_checkpoint, truncate_csv
from dlcli.components.early_stopping import EarlyStopper
from dlcli.components.environment import config_repository, environment
from dlcli.components.models import parameter_count
from dlcli.components.prepare import Prepared
from dlcli.components.schedules import measured_epochs
from dlcli.config.flat import config_hash, flat_config, to_yaml
from dlcli.config.schema import Experiment
from dlcli.layout import Status


@dataclass(frozen=True)
class ModelState:
    """One model's weights inside a snapshot of all the models of a stack ({key: [M, ...]}): the
    snapshot is taken once per epoch however many models train; a model's part is cut out of it
    only when it is written."""

    snapshot: dict[str, Tensor]
    index: int

    def state_dict(self) -> dict[str, Tensor]:
        return {key: value[self.index] for key, value in self.snapshot.items()}


class RunLog:
    """One run's files and outcome. Created when the run starts (its folder must exist), or by `resume`
    to continue a run from its checkpoint."""

    def __init__(self, prepared: Prepared, run_dir: Path, checkpoint: dict[str, Any] | None = None):
        self.prepared, self.run_dir = prepared, run_dir
        experiment, continued = prepared.experiment, checkpoint is not None
        self._header = _summary_header(prepared, run_dir)
        if continued:
            self._header["started"] = _started(run_dir) or self._header["started"]
            for log, column in ((layout.METRICS, "epoch"), (layout.STEPS, "epoch")):
                if (run_dir / log).is_file():
                    truncate_csv(run_dir / log, column, checkpoint["epoch"])
        else:
            layout.atomic_write_text(run_dir / layout.CONFIG, to_yaml(experiment))
        _write_environment(run_dir, experiment, continued)
        layout.atomic_write_json(run_dir / layout.SUMMARY, {**self._header, "status": Status.RUNNING,
                                                            "pid": os.getpid(), "host": socket.gethostname()})
        validation = prepared.dataset.x_val is not None
        self._metrics = layout.CsvLog(run_dir / layout.METRICS, layout.metric_columns(validation), continued)
        self._steps = layout.CsvLog(run_dir / layout.STEPS, layout.STEP_COLUMNS, continued and (
            run_dir / layout.STEPS).is_file()) if experiment.train.log_steps else None
        self._stopper = EarlyStopper(experiment.regularization.early_stopping)
        self._rows: list[dict[str, Any]] = read_rows(run_dir) if continued else []
        if continued:
            self._stopper.load(checkpoint["log"]["stopper"], _one_model_state)
        self._last_state: ModelState | None = None
        self.status: Status | None = None  # set when the run ends
        self._message: str | None = None
        self.summary: dict[str, Any] | None = None  # written when the run is finished

    @classmethod
    def resume(cls, prepared: Prepared, run_dir: Path) -> tuple[RunLog, dict[str, Any]] | None:
        """Continue a run from its checkpoint: the log, and the checkpoint (its position and what the
        engine saved under "engine"). None when the checkpoint is missing or unreadable, or the logs do
        not reach it: the run starts again."""
        checkpoint = read_checkpoint(run_dir)
        if checkpoint is None or not (run_dir / layout.METRICS).is_file():
            return None
        logged = [row["epoch"] for row in read_rows(run_dir)]
        measured = measured_epochs(prepared.experiment.train, checkpoint["epoch"])
        if logged[: len(measured)] != measured:
            return None
        return cls(prepared, run_dir, checkpoint), checkpoint

    def checkpoint(self, engine: dict[str, Any], position: dict[str, Any]) -> None:
        """Write checkpoint.pt: the engine's state for this model, the early stopper, and the position
        (epoch, step, seconds) it holds."""
        save_checkpoint(self.run_dir, {**position, "engine": engine, "log": {"stopper": self._stopper.state()}})

    def hand_over(self, engine: dict[str, Any], position: dict[str, Any]) -> None:
        """The run goes on in another training unit (a search regrouping its runs at a rung), which
        resumes it from the checkpoint written here: its logs are closed, nothing is finished, and its
        summary.json says running, with its results so far (what `interrupt_moved` keeps)."""
        self.checkpoint(engine, position)
        self._close_logs()
        self.status = Status.RUNNING
        self.summary = _final_summary(self._header, self._rows, Status.RUNNING,
                                      f"moving to another training unit after epoch {position['epoch']}",
                                      position["seconds"])
        layout.atomic_write_json(self.run_dir / layout.SUMMARY, self.summary)

    def restore_last_state(self, state: ModelState) -> None:
        """The weights a resumed run holds before its next epoch (written if it ends right away)."""
        self._last_state = state

    @property
    def experiment(self) -> Experiment:
        return self.prepared.experiment

    @property
    def ended(self) -> bool:
        return self.status is not None

    @property
    def logs_steps(self) -> bool:
        return self._steps is not None

    @property
    def last_row(self) -> dict[str, Any] | None:
        """The last metrics row logged (None before the first)."""
        return self._rows[-1] if self._rows else None

    def prune(self, message: str) -> None:
        """A search's successive halving stops the run here, its finished epochs kept."""
        if not self.ended:
            self._end(Status.PRUNED, message)

    def record(self, row: dict[str, Any], state: ModelState) -> None:
        """Log a measured epoch's metrics row, and end the run if it should stop early."""
        self._metrics.append(row)
        self._rows.append(row)
        self._last_state = state
        if self._stopper.should_stop(row, state):
            self._end(Status.EARLY_STOPPED, self._stopper.message(row["epoch"]))

    def stops_early_at(self, row: dict[str, Any]) -> bool:
        """Whether this row, once recorded, stops the run early (its epoch is then its last)."""
        return not self.ended and self._stopper.would_stop(row)

    def diverge(self, epoch: int, lr: float | None = None) -> None:
        """End the run: its losses were not finite in this epoch (0: at initialization); `lr`: its last update's."""
        self._end(Status.DIVERGED, _divergence_message(epoch, self.experiment, lr))

    def record_steps(self, rows: list[dict[str, Any]]) -> None:
        if self._steps is not None:
            self._steps.append_many(rows)

    def interrupt(self) -> None:
        """Ctrl-C: the run ends here, its finished epochs kept."""
        if not self.ended:
            self._end(Status.INTERRUPTED, f"interrupted after {self._rows[-1]['epoch'] if self._rows else 0} completed epochs")

    def finish(self, seconds: float) -> dict[str, Any]:
        """Write the weights (the best epoch's, when early stopping restores them) and the summary."""
        if self.summary is not None:
            return self.summary
        restored = self._stopper.restore()
        kept = self._stopper.best_state if restored is not None else self._last_state
        weights = kept.state_dict() if kept is not None else None
        self._close_logs()
        if weights is not None:
            layout.save_weights(self.run_dir / layout.WEIGHTS, weights)
        summary = _final_summary(self._header, self._rows, self.status or Status.COMPLETED, self._message, seconds,
                                 restored)
        summary["sparsity"] = sparsity(weights) if weights is not None else None
        layout.atomic_write_json(self.run_dir / layout.SUMMARY, summary)
        self.status, self.summary = summary["status"], summary
        if self.status in layout.FINISHED:  # a finished run is never continued
            (self.run_dir / layout.CHECKPOINT).unlink(missing_ok=True)
        return summary

    def fail(self, error: BaseException, seconds: float) -> None:
        """Record a run that broke (a bug, a resource failure): its epochs stay, the summary says why."""
        if self.summary is None:
            self.status = Status.FAILED
            self.summary = _final_summary(self._header, self._rows, Status.FAILED,
                                          f"{type(error).__name__}: {error}", seconds)
            layout.atomic_write_json(self.run_dir / layout.SUMMARY, self.summary)
            self._close_logs()

    def _end(self, status: Status, message: str) -> None:
        self.status, self._message = status, message

    def _close_logs(self) -> None:
        for log in (self._metrics, self._steps):
            if log is not None:
                log.close()


def interrupt_moved(run_dir: Path) -> dict[str, Any]:
    """An interrupt after the run was handed over and before another unit continued it: its summary
    says interrupted, as a run stopped in a unit would, and its checkpoint from the hand-over stays."""
    summary = layout.read_summary(run_dir)
    summary |= {"status": Status.INTERRUPTED, "message": f"interrupted after {summary.get('epochs_run', 0)} completed "
                "epochs, as it moved to another training unit"}
    layout.atomic_write_json(run_dir / layout.SUMMARY, summary)
    return summary


def _write_environment(run_dir: Path, experiment: Experiment, resumed: bool) -> None:
    """environment.json: what produced the run (collected once per process); a resumed run keeps what
    started it and adds, under `resumed`, each process that continued it."""
    current = {**environment(), "torch_threads": torch.get_num_threads(),  # this run's (train.threads)
               "config_file": experiment.source,
               "config_git": config_repository(experiment.source) or None if experiment.source else None}
    path = run_dir / layout.ENVIRONMENT
    if resumed:
        try:
            started = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            started = {}
        current = {**started, "resumed": [*started.get("resumed", []), current]} if started else current
    layout.atomic_write_json(path, current)


def _one_model_state(weights: dict[str, Tensor]) -> ModelState:
    return ModelState({key: value.unsqueeze(0) for key, value in weights.items()}, 0)


def _started(run_dir: Path) -> str | None:
    """When a resumed run first started (its summary says), or None."""
    try:
        return layout.read_summary(run_dir).get("started")
    except (OSError, ValueError):
        return None


def sparsity(state: dict[str, Tensor], threshold: float = 1e-3) -> float:
    """Fraction of the weights (every floating-point entry of the state) with |w| < threshold."""
    tensors = [value for value in state.values() if value.is_floating_point()]
    small = sum(int((value.abs() < threshold).sum()) for value in tensors)
    return small / max(1, sum(value.numel() for value in tensors))


def _divergence_message(epoch: int, experiment: Experiment, lr: float | None) -> str:
    if epoch == 0:
        return "the loss is not finite at initialization"
    # A schedule or the batch-size scaling can take the lr far from optim.lr: name the one that blew up.
    last = f", the last update's lr {lr:.6g}" if lr is not None and lr != experiment.optim.lr else ""
    return (f"loss became NaN or infinite in epoch {epoch} (optim.lr = {experiment.optim.lr}{last}); "
            f"kept epochs 0-{epoch - 1}")


def _summary_header(prepared: Prepared, run_dir: Path) -> dict[str, Any]:
    experiment = prepared.experiment
    return {
        "run_id": run_dir.name,
        "name": experiment.name,
        "seed": experiment.seed,
        "config_hash": config_hash(experiment),
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


def _final_summary(header: dict, rows: list[dict], status: Status, message: str | None, seconds: float,
                   restored: dict | None = None) -> dict:
    ran = rows[-1] if rows else {}
    final = restored or ran  # the metrics of the weights the run ends with (and model.pt holds)
    tested = [row for row in rows if row.get("test_error") is not None]  # all, unless `train.eval_splits: val`
    best = min(tested, key=lambda row: row["test_error"]) if tested else {}
    return {
        **header,
        "status": status,
        "message": message,
        "epochs_run": ran.get("epoch", 0),
        "steps": ran.get("step", 0),
        "restored_epoch": restored["epoch"] if restored else None,
        **{key: final.get(key) for key in ("train_loss", "train_error", "test_loss", "test_error",
                                           "val_loss", "val_error", "weight_norm")},
        "gap": final["test_error"] - final["train_error"] if final.get("test_error") is not None else None,
        "best_test_error": best.get("test_error"),
        "best_epoch": best.get("epoch"),
        "seconds": seconds,
    }

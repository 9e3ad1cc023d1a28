"""The on-disk contract: what a run folder and a sweep folder hold, the statuses a run can have, the
columns of every CSV, and how each file is written. Every module that reads or writes results goes
through the names here.

<out>/<name>/<run-id>/            run-id = <date>-<time>-<config hash> (a sweep's runs: the config hash)
    config.yaml       the fully resolved config
    metrics.csv       one row per epoch (epoch 0 = before training), appended and flushed per epoch
    steps.csv         with train.log_steps: one row per update
    summary.json      status, final and best metrics, provenance
    model.pt          a plain state dict: the weights the run ends with (the last completed epoch's,
                      or the best epoch's when early stopping restores them)
    checkpoint.pt     while a run is unfinished: everything needed to continue it exactly (weights,
                      optimizer state, random streams, early stopper, position); removed when it finishes
    evaluation.json   written by `dlcli evaluate`
    environment.json  provenance: versions, git commit, machine, command line (components.environment)
    tags.json         `dlcli tag`: {"tags": {key: value}, "note": text}; the run's config is never touched
<out>/<name>/                     a sweep adds, beside its runs:
    sweep.yaml        the spec: base config, overrides, axes, seeds (a search: its space and settings)
    runs.csv          one row per point, in point order (a search: per trial, with its number)
    search.journal    a search's Optuna journal: every trial asked, its parameters and outcome
    bias_variance.csv `dlcli bias-variance`: one row per grid point and decomposition

Metrics are appended and flushed per epoch, so a kill keeps every finished epoch; every other file is
written to a temporary file in the same folder and renamed into place, so no reader sees half a file.
"""
from __future__ import annotations

import csv
import io
import json
import math
import os
import socket
import tempfile
import time
from enum import Enum
from pathlib import Path
from typing import Any

from dlcli.errors import UserError

# ---- file names ------------------------------------------------------------------------------------

CONFIG = "config.yaml"
METRICS = "metrics.csv"
STEPS = "steps.csv"
SUMMARY = "summary.json"
WEIGHTS = "model.pt"
CHECKPOINT = "checkpoint.pt"
SWEEP_LOCK = ".sweep.lock"  # held (flock) by the process running a sweep; names it
EVALUATION = "evaluation.json"
SWEEP_SPEC = "sweep.yaml"
RUNS = "runs.csv"
SEARCH_JOURNAL = "search.journal"  # a search's trials (Optuna's journal format, dlcli.sweep.journal): resumable, no server
BIAS_VARIANCE = "bias_variance.csv"
LR_FIND_CURVE = "lr_find.csv"
LR_FIND_SUMMARY = "lr_find.json"
ENVIRONMENT = "environment.json"
TAGS = "tags.json"


# ---- statuses --------------------------------------------------------------------------------------


class Status(str, Enum):
    """A run's status in summary.json (and a sweep point's in runs.csv)."""

    PENDING = "pending"  # a sweep point not trained yet
    RUNNING = "running"  # training, or killed while training
    COMPLETED = "completed"
    EARLY_STOPPED = "early_stopped"
    DIVERGED = "diverged"  # the loss became NaN or infinite; the finished epochs are kept
    INTERRUPTED = "interrupted"  # Ctrl-C; the finished epochs are kept
    FAILED = "failed"  # a bug or a resource failure; the finished epochs are kept
    PRUNED = "pruned"  # a search trial stopped at a rung of successive halving; its epochs are kept

    def __str__(self) -> str:
        return self.value


SUCCEEDED = frozenset({Status.COMPLETED, Status.EARLY_STOPPED})  # trained to the end it was meant to have
FINISHED = SUCCEEDED | {Status.DIVERGED, Status.PRUNED}  # outcomes of the experiment itself: never rerun


# ---- columns ---------------------------------------------------------------------------------------


def metric_columns(validation: bool) -> list[str]:
    """metrics.csv's columns: val_* only when part of the training set is held out."""
    return ["epoch", "step", "lr", "train_loss", "train_error", "test_loss", "test_error",
            *(["val_loss", "val_error"] if validation else []), "weight_norm", "seconds"]


STEP_COLUMNS = ["step", "epoch", "batch_size", "lr", "batch_loss", "seconds"]
RUN_RESULT_COLUMNS = ["train_loss", "train_error", "test_loss", "test_error", "gap", "best_test_error",
                      "best_epoch", "epochs_run", "seconds", "message"]  # runs.csv, after the swept keys
LR_FIND_COLUMNS = ["step", "lr", "loss", "smoothed_loss", "accuracy"]
DECOMPOSITION_NUMBERS = ["risk", "bias2", "variance", "variance_sampling", "variance_optimization", "noise",
                         "bayes_error"]
SEARCH_RESULT_COLUMNS = ["val_loss", "val_error"]  # a search's runs.csv: what trials are chosen on


def runs_columns(keys: list[str], search: bool = False) -> list[str]:
    """runs.csv's columns for a sweep over these keys (a search's: the trial number, validation metrics)."""
    results = [*SEARCH_RESULT_COLUMNS, *RUN_RESULT_COLUMNS] if search else RUN_RESULT_COLUMNS
    return ["trial"] * search + ["run_id", "status", "seed", *[key for key in keys if key != "seed"], *results]


def bias_variance_columns(keys: list[str]) -> list[str]:
    """bias_variance.csv's columns for a study over these grid keys."""
    return [*keys, "decomposition", *DECOMPOSITION_NUMBERS, "trials", "seeds", "split", "n_test"]


# ---- folders ---------------------------------------------------------------------------------------


def check_output_root(out_root: Path) -> None:
    """The output root must be a folder or not exist yet (it is created when the first run starts)."""
    for path in (Path(out_root), *Path(out_root).parents):
        if path.exists():
            if not path.is_dir():
                raise UserError(f"--out {out_root}: {path} is a file, not a folder")
            if not os.access(path, os.W_OK):
                raise UserError(f"--out {out_root}: {path} is not writable")
            return


def new_run_dir(out_root: Path, name: str, config_hash: str, prefix: str = "") -> Path:
    """Create <out>/<name>/<prefix><timestamp>-<hash>, with a numeric suffix if that exists already."""
    parent = Path(out_root) / name
    parent.mkdir(parents=True, exist_ok=True)
    stem = f"{prefix}{time.strftime('%Y%m%d-%H%M%S')}" + (f"-{config_hash[:6]}" if config_hash else "")
    for attempt in range(1, 1000):
        candidate = parent / (stem if attempt == 1 else f"{stem}-{attempt}")
        try:
            candidate.mkdir()
            return candidate
        except FileExistsError:
            continue
    raise RuntimeError(f"could not create a run directory under {parent}")


# ---- atomic writes ---------------------------------------------------------------------------------


def atomic_write_bytes(path: Path, payload: bytes, durable: bool = False) -> None:
    """Write to a temporary file in the same folder, then rename: readers, and a process killed at any
    point, never see half a file. `durable`: on the disk before the rename (fsync), so that a power cut
    keeps it too: for weights and checkpoints, the costly state. A small file lost that way leaves a run
    folder that reads as broken, and is trained again; an fsync for each took a tenth of a short search."""
    handle, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(handle, "wb") as file:
            file.write(payload)
            file.flush()
            if durable:
                os.fsync(file.fileno())
        os.chmod(temporary, 0o666 & ~umask())  # mkstemp makes 0600; give the usual permissions
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise


def umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def atomic_write_text(path: Path, text: str) -> None:
    atomic_write_bytes(path, text.encode("utf-8"))


def atomic_write_json(path: Path, data: dict[str, Any]) -> None:
    atomic_write_text(path, json.dumps(_json_safe(data), indent=2) + "\n")


def _json_safe(value: Any) -> Any:
    """JSON has no NaN or infinity: a diverged metric is written as null."""
    if isinstance(value, dict):
        return {key: _json_safe(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [_json_safe(item) for item in value]
    return None if isinstance(value, float) and not math.isfinite(value) else value


def save_weights(path: Path, state_dict: dict[str, Any]) -> None:
    """model.pt: a plain state dict on the CPU, loadable with torch.load(..., weights_only=True)."""
    import torch

    buffer = io.BytesIO()
    torch.save({key: value.cpu() for key, value in state_dict.items()}, buffer)
    atomic_write_bytes(path, buffer.getvalue(), durable=True)


def load_weights(path: Path) -> dict[str, Any]:
    import torch

    return torch.load(path, map_location="cpu", weights_only=True)


# ---- CSV -------------------------------------------------------------------------------------------


class CsvLog:
    """An append-only CSV (metrics.csv, steps.csv): rows appended and flushed as they come, so a crash
    or a kill keeps every one; `close` makes it durable (fsync) once, when the run ends."""

    def __init__(self, path: Path, columns: list[str], continued: bool = False):
        """A new file with its header, or (`continued`) an existing one that goes on where it stopped."""
        self.path, self.columns = path, columns
        self.file = open(path, "a", encoding="utf-8")
        if not continued:
            self._append(columns)

    def append(self, row: dict[str, Any]) -> None:
        self.append_many([row])

    def append_many(self, rows: list[dict[str, Any]]) -> None:
        """Several rows with one write and one flush (steps.csv gets a whole epoch at a time)."""
        self._append(*[[csv_cell(row[column]) for column in self.columns] for row in rows])

    def close(self) -> None:
        if not self.file.closed:
            os.fsync(self.file.fileno())
            self.file.close()

    def _append(self, *rows: list[Any]) -> None:
        buffer = io.StringIO()
        csv.writer(buffer, lineterminator="\n").writerows(rows)
        self.file.write(buffer.getvalue())
        self.file.flush()  # in the operating system's hands: survives the process being killed


def csv_text(rows: list[dict[str, Any]], columns: list[str]) -> str:
    """A whole table as CSV (runs.csv, bias_variance.csv), to be written atomically."""
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, columns, extrasaction="ignore", lineterminator="\n")
    writer.writeheader()
    for row in rows:
        writer.writerow({column: csv_cell(row.get(column)) for column in columns})
    return buffer.getvalue()


def csv_cell(value: Any) -> str:
    """A value as stored: floats in full precision (repr), None empty, lists and mappings as JSON."""
    if value is None:
        return ""
    if isinstance(value, (list, dict)):
        return json.dumps(value)
    return repr(value) if isinstance(value, float) else str(value)


# ---- reading ---------------------------------------------------------------------------------------


def whole_rows(path: Path) -> str:
    """An appended CSV's text to its last line break: a row cut short (being written, a full disk) is left out."""
    with open(path, encoding="utf-8", newline="") as file:
        text = file.read()
    return text[: text.rfind("\n") + 1]


def read_metrics(run_dir: Path) -> list[dict[str, float | None]]:
    """metrics.csv's whole rows as numbers; None for a split the epoch did not measure (`train.eval_splits`)."""
    rows = csv.DictReader(io.StringIO(whole_rows(Path(run_dir) / METRICS)))
    return [{key: float(value) if value else None for key, value in row.items()} for row in rows]


def read_summary(run_dir: Path) -> dict[str, Any]:
    return json.loads((Path(run_dir) / SUMMARY).read_text(encoding="utf-8"))


def run_is_live(summary: dict[str, Any]) -> bool:
    """Whether a `running` summary belongs to a process that is still alive on this machine (a run
    killed without a word stays `running`). A run on another host counts as live: it cannot be checked."""
    if summary.get("status") != Status.RUNNING:
        return False
    pid, host = summary.get("pid"), summary.get("host")
    if not isinstance(pid, int) or host is None:
        return False  # written before runs recorded their process
    if host != socket.gethostname():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # alive, under another user
    return True


def finished_summary(run_dir: Path) -> dict[str, Any] | None:
    """The summary of a run that finished (completed, stopped early or diverged), else None."""
    try:
        summary = read_summary(run_dir)
    except (OSError, ValueError):
        return None
    return summary if summary.get("status") in FINISHED and (Path(run_dir) / METRICS).is_file() else None

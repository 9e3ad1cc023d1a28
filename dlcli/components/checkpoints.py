"""A run's checkpoint file: written atomically, read back safely (weights_only: no code runs), and the
logs cut back to it when a run resumes.

checkpoint.pt holds {"epoch", "step", "seconds", "engine": what the engine needs to continue exactly
(weights, optimizer state, random streams, lr), "log": what the run log needs (the early stopper)}.
"""
from __future__ import annotations

import csv
import io
import pickle
from pathlib import Path
from typing import Any

import torch

from dlcli import layout


def save_checkpoint(run_dir: Path, payload: dict[str, Any]) -> None:
    """Tensors, numbers, strings, lists and dicts only, so that it loads with weights_only=True."""
    buffer = io.BytesIO()
    torch.save(payload, buffer)
    layout.atomic_write_bytes(run_dir / layout.CHECKPOINT, buffer.getvalue(), durable=True)


def read_checkpoint(run_dir: Path) -> dict[str, Any] | None:
    """A run's checkpoint, or None when it has none or it cannot be read (truncated, corrupt)."""
    try:
        payload = torch.load(Path(run_dir) / layout.CHECKPOINT, map_location="cpu", weights_only=True)
    except (OSError, EOFError, RuntimeError, ValueError, pickle.UnpicklingError):
        return None
    return payload if isinstance(payload, dict) and isinstance(payload.get("epoch"), int) else None


def checkpoint_epoch(run_dir: Path) -> int | None:
    """The last epoch a run's checkpoint holds, or None: the run starts from epoch 0."""
    payload = read_checkpoint(run_dir)
    return None if payload is None else payload["epoch"]


def truncate_csv(path: Path, column: str, last: int) -> None:
    """Keep the header and the rows whose `column` is at most `last` (what was logged after the
    checkpoint is logged again), rewriting the file atomically and byte for byte; a row cut short goes too."""
    lines = layout.whole_rows(path).splitlines(keepends=True)
    position = next(csv.reader(lines[:1])).index(column)
    kept = [line for line in lines[1:] if int(next(csv.reader([line]))[position]) <= last]
    layout.atomic_write_text(path, "".join(lines[:1] + kept))


def read_rows(run_dir: Path) -> list[dict[str, Any]]:
    """metrics.csv's rows as the loop logged them: epoch and step integers, the rest as `read_metrics`
    reads them (None for a split the epoch did not measure)."""
    return [{**row, "epoch": int(row["epoch"]), "step": int(row["step"])} for row in layout.read_metrics(run_dir)]

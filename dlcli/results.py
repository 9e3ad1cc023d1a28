"""The files a run writes, and how: metrics appended and flushed per epoch, everything else atomically.

<out>/<name>/<run-id>/
    config.yaml    the fully resolved config
    metrics.csv    one row per epoch (epoch 0 = before training)
    summary.json   status, final and best metrics, provenance
    model.pt       state dict at the end of the last completed epoch
"""
from __future__ import annotations

import csv
import io
import json
import math
import os
import tempfile
import time
from pathlib import Path
from typing import Any

from dlcli.errors import UserError

METRIC_COLUMNS = ["epoch", "step", "lr", "train_loss", "train_error", "test_loss", "test_error", "seconds"]


def atomic_write_bytes(path: Path, payload: bytes) -> None:
    """Write to a temporary file in the same folder, then rename: readers never see half a file."""
    handle, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(handle, "wb") as file:
            file.write(payload)
            file.flush()
            os.fsync(file.fileno())
        os.chmod(temporary, 0o666 & ~_umask())  # mkstemp makes 0600; give the usual permissions
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def atomic_write_text(path: Path, text: str) -> None:
    atomic_write_bytes(path, text.encode("utf-8"))


def atomic_write_json(path: Path, data: dict[str, Any]) -> None:
    atomic_write_text(path, json.dumps(_json_safe(data), indent=2) + "\n")


def _json_safe(value: Any) -> Any:
    # JSON has no NaN or infinity; a diverged metric is written as null.
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {key: _json_safe(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [_json_safe(item) for item in value]
    return value


def check_output_root(out_root: Path) -> None:
    """The output root must be a folder or not exist yet (it is created when the first run starts)."""
    for path in (Path(out_root), *Path(out_root).parents):
        if path.exists():
            if not path.is_dir():
                raise UserError(f"--out {out_root}: {path} is a file, not a folder")
            if not os.access(path, os.W_OK):
                raise UserError(f"--out {out_root}: {path} is not writable")
            return


def new_run_dir(out_root: Path, name: str, config_hash: str) -> Path:
    """Create <out>/<name>/<timestamp>-<hash>, with a numeric suffix if that exists already."""
    parent = Path(out_root) / name
    parent.mkdir(parents=True, exist_ok=True)
    stem = f"{time.strftime('%Y%m%d-%H%M%S')}-{config_hash[:6]}"
    for attempt in range(1, 1000):
        candidate = parent / (stem if attempt == 1 else f"{stem}-{attempt}")
        try:
            candidate.mkdir()
            return candidate
        except FileExistsError:
            continue
    raise RuntimeError(f"could not create a run directory under {parent}")


class MetricsLog:
    """metrics.csv, one row appended and flushed per epoch, so a crash or a kill keeps every epoch;
    `close` makes it durable (fsync) once, when the run ends, not at every epoch."""

    def __init__(self, path: Path, columns: list[str] = METRIC_COLUMNS):
        self.path, self.columns = path, columns
        self.file = open(path, "a", encoding="utf-8")
        self._append(columns)

    def append(self, row: dict[str, Any]) -> None:
        self.append_many([row])

    def append_many(self, rows: list[dict[str, Any]]) -> None:
        """Several rows with one write and one flush (steps.csv gets a whole epoch at a time)."""
        self._append(*[[_format(row[column]) for column in self.columns] for row in rows])

    def close(self) -> None:
        if not self.file.closed:
            os.fsync(self.file.fileno())
            self.file.close()

    def _append(self, *rows: list[Any]) -> None:
        buffer = io.StringIO()
        csv.writer(buffer, lineterminator="\n").writerows(rows)
        self.file.write(buffer.getvalue())
        self.file.flush()  # in the operating system's hands: survives the process being killed


def _format(value: Any) -> str:
    return repr(value) if isinstance(value, float) else str(value)


def csv_text(rows: list[dict[str, Any]], columns: list[str]) -> str:
    """A table as CSV: floats in full precision, None empty, lists and mappings as JSON."""
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, columns, extrasaction="ignore", lineterminator="\n")
    writer.writeheader()
    for row in rows:
        writer.writerow({column: csv_cell(row.get(column)) for column in columns})
    return buffer.getvalue()


def csv_cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, (list, dict)):
        return json.dumps(value)
    return _format(value)


def read_metrics(run_dir: Path) -> list[dict[str, float]]:
    with open(Path(run_dir) / "metrics.csv", encoding="utf-8") as file:
        return [{key: float(value) for key, value in row.items()} for row in csv.DictReader(file)]


def read_summary(run_dir: Path) -> dict[str, Any]:
    return json.loads((Path(run_dir) / "summary.json").read_text(encoding="utf-8"))

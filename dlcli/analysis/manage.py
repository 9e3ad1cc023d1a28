"""Keeping a results folder in order: which runs are there and in what state (`dlcli runs`), how two
runs differ (`dlcli diff`), and removing the ones that did not finish (`dlcli clean`, which puts
their points of a sweep back to `pending` in runs.csv so that the sweep trains them again).

Tags (`dlcli tag`) are in `dlcli.components.tags`. Nothing here imports torch.
"""
from __future__ import annotations

import csv
import io
import json
import os
import shutil
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import pandas as pd

from dlcli import layout
from dlcli.analysis.compare import find_runs, load_runs, run_config
from dlcli.analysis.filters import where
from dlcli.components.tags import check_run_dirs, read_tags
from dlcli.config.flat import flatten
from dlcli.errors import UserError
from dlcli.layout import Status

LIST_COLUMNS = ["name", "run_id", "status", "live", "started", "age_seconds", "epochs_run", "test_error", "tags",
                "note", "path"]
DIFF_METRICS = ["status", "epochs_run", "train_loss", "train_error", "test_loss", "test_error", "gap",
                "best_test_error", "best_epoch", "seconds"]
CLEAN_DEFAULT = [Status.FAILED]  # interrupted and killed runs can be resumed from their checkpoints
ABSENT = object()  # a key one run has and the other has not


def parse_statuses(text: str | None, option: str = "--status") -> list[Status] | None:
    """`interrupted,failed` as statuses (None for None); an unknown name is a UserError."""
    if text is None:
        return None
    names = [name.strip() for name in text.split(",") if name.strip()]
    known = [status.value for status in Status]
    unknown = [name for name in names if name not in known]
    if unknown or not names:
        raise UserError(f"{option} {','.join(unknown) or repr(text)}: unknown status "
                        f"(allowed: {', '.join(known)})")
    return [Status(name) for name in names]


# ---- dlcli runs ------------------------------------------------------------------------------------


def list_runs(paths: list[str | Path], expressions: list[str] | None = None,
              statuses: list[Status] | None = None) -> pd.DataFrame:
    """One row per run below the paths, newest first: LIST_COLUMNS. `live` says, for a `running` run,
    whether its process is alive, and its epochs and test error are the last logged in metrics.csv;
    `tags` is the tags as `key=value, ...` text."""
    frame = where(load_runs(paths), list(expressions or []))
    if statuses is not None:
        frame = frame[frame["status"].isin([status.value for status in statuses])]
    if frame.empty:
        return pd.DataFrame(columns=LIST_COLUMNS)
    listing = frame.assign(
        name=frame["name"] if "name" in frame else None,
        live=[_live(path) if status == Status.RUNNING else None for path, status in zip(frame["path"], frame["status"])],
        age_seconds=frame["started"].map(age_seconds),
        tags=frame["path"].map(_tags_text))
    for column in ("epochs_run", "test_error"):
        listing[column] = pd.to_numeric(listing[column], errors="coerce").astype(float)
    for index in listing.index[listing["status"] == Status.RUNNING]:
        listing.loc[index, ["epochs_run", "test_error"]] = _last_logged(listing.at[index, "path"])
    listing["epochs_run"] = listing["epochs_run"].astype("Int64")
    listing = listing.sort_values("age_seconds", na_position="last", kind="stable")
    return listing[LIST_COLUMNS].reset_index(drop=True)


def age_seconds(started: Any, now: datetime | None = None) -> float | None:
    """Seconds since summary.json's `started` (2026-11-27T10:38:11+0100), None when unreadable."""
    try:
        moment = datetime.strptime(started, "%Y-%m-%dT%H:%M:%S%z")
    except (TypeError, ValueError):
        return None
    return ((now or datetime.now(timezone.utc)) - moment).total_seconds()


def _live(path: str) -> bool:
    try:
        return layout.run_is_live(layout.read_summary(Path(path)))
    except (OSError, ValueError):
        return False


def _last_logged(path: str) -> list[float | None]:
    """The epoch and test error of the last whole row of metrics.csv (a row being written is skipped;
    the test error is None when that epoch did not measure the test split: `train.eval_splits`)."""
    try:
        rows = list(csv.DictReader(io.StringIO(layout.whole_rows(Path(path) / layout.METRICS))))
    except OSError:
        return [None, None]
    for row in reversed(rows):
        try:
            return [float(row["epoch"]), float(row["test_error"]) if row["test_error"] else None]
        except (KeyError, TypeError, ValueError):
            continue
    return [None, None]


def _tags_text(path: str) -> str:
    return ", ".join(f"{key}={value}" for key, value in read_tags(path)["tags"].items())


# ---- dlcli diff ------------------------------------------------------------------------------------


@dataclass
class RunDiff:
    """Two runs side by side: (key, value in A, value in B) rows; ABSENT where a run lacks the key."""

    runs: tuple[Path, Path]
    config: list[tuple[str, Any, Any]]  # the keys that differ
    environment: list[tuple[str, Any, Any]] | None  # the keys that differ; None without both files
    environment_files: tuple[bool, bool]  # whether each run has environment.json
    metrics: list[tuple[str, Any, Any]]  # every final metric
    config_hashes: tuple[Any, Any]


def diff_runs(run_a: str | Path, run_b: str | Path) -> RunDiff:
    """The config keys and environment keys that differ between two runs, and their final metrics."""
    check_run_dirs([run_a, run_b])
    runs = [Path(run_a), Path(run_b)]
    summaries = [layout.read_summary(run) for run in runs]
    configs = [run_config(run, summary) for run, summary in zip(runs, summaries)]
    environments = [_environment(run) for run in runs]
    both = all(environment is not None for environment in environments)
    return RunDiff(
        runs=(runs[0], runs[1]),
        config=differences(*configs),
        environment=differences(*(flatten(environment) for environment in environments)) if both else None,
        environment_files=(environments[0] is not None, environments[1] is not None),
        metrics=[(metric, *(summary.get(metric, ABSENT) for summary in summaries)) for metric in DIFF_METRICS],
        config_hashes=(summaries[0].get("config_hash"), summaries[1].get("config_hash")))


def differences(a: dict[str, Any], b: dict[str, Any]) -> list[tuple[str, Any, Any]]:
    """(key, a's value, b's value) for each key whose values differ, in a's order then b's."""
    keys = list(dict.fromkeys([*a, *b]))
    return [(key, a.get(key, ABSENT), b.get(key, ABSENT)) for key in keys if a.get(key, ABSENT) != b.get(key, ABSENT)]


def _environment(run_dir: Path) -> dict[str, Any] | None:
    try:
        return json.loads((run_dir / layout.ENVIRONMENT).read_text(encoding="utf-8"))
    except FileNotFoundError:
        return None
    except (OSError, ValueError) as error:
        raise UserError(f"{run_dir / layout.ENVIRONMENT}: not readable as JSON ({error})") from None


# ---- dlcli clean -----------------------------------------------------------------------------------


@dataclass
class Removal:
    path: Path
    status: str
    bytes: int


@dataclass
class CleanResult:
    removed: list[Removal]  # removed, or with dry_run what would be
    live: list[tuple[Path, dict[str, Any]]]  # `running` runs whose process is alive: kept, with their summary
    reset: dict[Path, list[str]] = field(default_factory=dict)  # runs.csv -> run ids put back to pending
    dry_run: bool = False

    @property
    def freed(self) -> int:
        return sum(removal.bytes for removal in self.removed)


def clean_runs(root: str | Path, statuses: list[Status] | None = None, dry_run: bool = False) -> CleanResult:
    """Remove the run folders below `root` with these statuses (default CLEAN_DEFAULT), never a
    `running` one whose process is alive; a removed sweep point goes back to `pending` in its runs.csv
    (a search's finished trial keeps its row: its journal keeps the outcome, and it is never trained again)."""
    wanted = {status.value for status in (statuses or CLEAN_DEFAULT)}
    result = CleanResult([], [], dry_run=dry_run)
    for run_dir in find_runs([root]):
        try:
            summary = layout.read_summary(run_dir)
        except (OSError, ValueError):
            continue  # being written for the first time
        if summary.get("status") not in wanted:
            continue
        if layout.run_is_live(summary):
            result.live.append((run_dir, summary))
        else:
            result.removed.append(Removal(run_dir, str(summary.get("status")), folder_bytes(run_dir)))
    for removal in result.removed if not dry_run else []:
        shutil.rmtree(removal.path)
    for sweep_dir, run_ids in _by_sweep(result.removed).items():
        if (sweep_dir / layout.SEARCH_JOURNAL).is_file():  # a search's journal keeps a finished trial's outcome
            run_ids = {removal.path.name for removal in result.removed if removal.path.parent == sweep_dir
                       and removal.status not in layout.FINISHED}
        reset = reset_points(sweep_dir / layout.RUNS, run_ids, write=not dry_run)
        if reset:
            result.reset[sweep_dir / layout.RUNS] = reset
    return result


def folder_bytes(folder: Path) -> int:
    return sum(os.lstat(os.path.join(parent, name)).st_size
               for parent, _, files in os.walk(folder) for name in files)


def _by_sweep(removed: list[Removal]) -> dict[Path, set[str]]:
    sweeps: dict[Path, set[str]] = {}
    for removal in removed:
        if (removal.path.parent / layout.RUNS).is_file():
            sweeps.setdefault(removal.path.parent, set()).add(removal.path.name)
    return sweeps


def reset_points(runs_csv: Path, run_ids: set[str], write: bool = True) -> list[str]:
    """Put these points of a sweep's runs.csv back to `pending`, their results empty; returns the run
    ids it reset (rewritten atomically unless `write` is False)."""
    with open(runs_csv, newline="", encoding="utf-8") as file:
        reader = csv.DictReader(file)
        rows, columns = list(reader), list(reader.fieldnames or [])
    reset = []
    for row in rows:
        if row.get("run_id") in run_ids:
            row |= {"status": Status.PENDING.value, **{key: "" for key in layout.RUN_RESULT_COLUMNS if key in row}}
            reset.append(row["run_id"])
    if reset and write:
        layout.atomic_write_text(runs_csv, layout.csv_text(rows, columns))
    return reset

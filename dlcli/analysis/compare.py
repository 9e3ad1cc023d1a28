"""Comparing runs: load their summaries into one table, filter, group seed replicates, pivot.

Plain pandas, no torch: every run's summary.json carries its flattened config, so a folder of a
thousand runs loads in about a second. A run's tags (tags.json) are `tag.KEY` columns: they filter
(--where tag.KEY=VALUE) and group (--by), but are not config, so they never split seed replicates.
"""
from __future__ import annotations

import io
import math
import os
from pathlib import Path
from typing import Any

import pandas as pd
import yaml

from dlcli import layout
from dlcli.components.tags import TAG_PREFIX, read_tags
from dlcli.config.flat import flatten
from dlcli.errors import UserError
from dlcli.layout import SUCCEEDED

METRICS = ["train_error", "test_error", "gap", "train_loss", "test_loss", "best_epoch"]
EXTRA_METRICS = ["best_test_error", "epochs_run", "steps", "seconds", "bayes_error", "parameters",
                 "val_loss", "val_error", "weight_norm", "sparsity", "restored_epoch"]
# Keys that repeat a point rather than vary it: the seed, and a bias-variance study's training set.
REPLICATES = ("seed", "data.resample.index")
INFO = ["run_id", "status", "path", "started", "note", "trial", "chosen"]  # trial, chosen: a search's runs


def find_runs(paths: list[str | Path]) -> list[Path]:
    """Run directories (holding summary.json) at or below each path, each once, in path order."""
    found: list[Path] = []
    for path in map(Path, paths):
        if not path.exists():
            raise UserError(f"{path}: no such file or directory")
        if (path / layout.SUMMARY).is_file():
            found.append(path)
            continue
        for folder, subfolders, files in os.walk(path):
            subfolders[:] = sorted(name for name in subfolders if not name.startswith("."))
            if layout.SUMMARY in files:
                found.append(Path(folder))
                subfolders[:] = []  # a run directory holds no other runs
    unique = list(dict.fromkeys(found))
    if not unique:
        raise UserError(f"{', '.join(map(str, paths))}: no runs found (no summary.json below)")
    return unique


def load_runs(paths: list[str | Path]) -> pd.DataFrame:
    """One row per run: run_id, status, path, started, note, every config key (dotted), the final
    metrics, and a tag.KEY column per tag."""
    records = []
    for run_dir in find_runs(paths):
        try:
            summary = layout.read_summary(run_dir)
        except (OSError, ValueError):
            continue  # a run being written for the first time; its summary appears atomically
        record = {key: hashable(value) for key, value in run_config(run_dir, summary).items()}
        record |= {key: summary.get(key) for key in METRICS + EXTRA_METRICS}
        record |= {"run_id": summary.get("run_id", run_dir.name), "status": summary.get("status"),
                   "path": str(run_dir), "started": summary.get("started")}
        tags = read_tags(run_dir)
        record |= {TAG_PREFIX + key: hashable(parse_value(value)) for key, value in tags["tags"].items()}
        records.append(record | {"note": tags["note"]})
    return pd.DataFrame.from_records(records)


def run_config(run_dir: Path, summary: dict[str, Any]) -> dict[str, Any]:
    """A run's flattened config: from its summary, or config.yaml for summaries that lack it."""
    return summary.get("config") or _config_from_yaml(Path(run_dir))


def config_columns(frame: pd.DataFrame) -> list[str]:
    return [c for c in frame.columns if c not in INFO + METRICS + EXTRA_METRICS and not c.startswith(TAG_PREFIX)]


def varying_keys(frame: pd.DataFrame) -> tuple[list[str], dict[str, Any]]:
    """Config keys whose value differs between runs, and the rest with their one shared value."""
    varying, constant = [], {}
    for column in config_columns(frame):
        values = frame[column].map(group_value).unique()
        if len(values) > 1:
            varying.append(column)
        else:
            constant[column] = frame[column].iloc[0]
    return varying, constant


def check_columns(frame: pd.DataFrame, columns: list[str], option: str) -> None:
    missing = [column for column in columns if column not in frame.columns]
    if missing:
        known = ", ".join(sorted(frame.columns))
        raise UserError([f"{option} {column}: unknown column (known: {known})" for column in missing])


def group(frame: pd.DataFrame, by: list[str], metrics: list[str]) -> pd.DataFrame:
    """Mean and std of each metric over the runs sharing the `by` values; `n` counts them."""
    rows = []
    for values, members in frame.groupby([frame[key].map(group_value) for key in by], sort=False, dropna=False):
        row = {key: members[key].iloc[0] for key in by}
        for metric in metrics:
            numbers = pd.to_numeric(members[metric], errors="coerce")
            row[metric] = numbers.mean()
            row[f"{metric}_std"] = numbers.std(ddof=1) if numbers.count() > 1 else 0.0
        statuses = sorted(members["status"].value_counts().items(), key=lambda item: (-item[1], str(item[0])))
        row["status"] = statuses[0][0] if len(statuses) == 1 else ", ".join(f"{n} {status}" for status, n in statuses)
        row["n"] = len(members)
        rows.append(row)
    return pd.DataFrame(rows)


def sort_runs(frame: pd.DataFrame, column: str) -> pd.DataFrame:
    """Sort by a column (`-column` for descending); runs that did not complete go to the bottom."""
    descending = column.startswith("-")
    column = column.lstrip("-")
    check_columns(frame, [column], "--sort")
    failed = ~frame["status"].map(succeeded)
    keys = frame[column].map(sort_key)
    order = sorted(range(len(frame)), key=lambda i: (bool(failed.iloc[i]), _flip(keys.iloc[i], descending)))
    return frame.iloc[order].reset_index(drop=True)


def succeeded(status: Any) -> bool:
    """Whether a run's status, or a seed group's (`2 completed, 1 early_stopped`), is success for all."""
    return all(part.split(" ")[-1] in SUCCEEDED for part in str(status).split(", "))


def pivot(frame: pd.DataFrame, row_key: str, column_key: str, value: str) -> tuple[pd.DataFrame, pd.DataFrame]:
    """A grid of the mean `value` (rows × columns), and a grid of how the cell's runs that did not
    complete ended (`diverged`, `interrupted, pruned`; "" where every run completed)."""
    check_columns(frame, [row_key, column_key], "--pivot")
    check_columns(frame, [value], "--value")
    cells = frame.assign(_ended=frame["status"].where(~frame["status"].isin(SUCCEEDED), ""),
                         _value=pd.to_numeric(frame[value], errors="coerce"),
                         _row=frame[row_key].map(group_value), _column=frame[column_key].map(group_value))
    table = cells.pivot_table(index="_row", columns="_column", values="_value", aggfunc="mean", dropna=False)
    ended = cells.pivot_table(index="_row", columns="_column", values="_ended", dropna=False,
                              aggfunc=lambda statuses: ", ".join(sorted(set(statuses) - {""})))
    row_order = sorted(table.index, key=sort_key)
    column_order = sorted(table.columns, key=sort_key)
    table = table.reindex(index=row_order, columns=column_order)
    ended = ended.reindex(index=row_order, columns=column_order).fillna("")
    table.index.name, table.columns.name = row_key, column_key
    return table, ended


def read_curves(frame: pd.DataFrame, file: str = layout.METRICS) -> pd.DataFrame:
    """Per-epoch metrics (metrics.csv) or per-update losses (steps.csv) of the runs, long form,
    with a `run_id` column; runs without the file are left out. A run still training may be writing
    its last row: only complete rows (ending in a newline) are read."""
    parts = []
    for run_id, path in zip(frame["run_id"], frame["path"]):
        csv_path = Path(path) / file
        if csv_path.is_file():
            parts.append(pd.read_csv(io.StringIO(layout.whole_rows(csv_path))).assign(run_id=run_id))
    return pd.concat(parts, ignore_index=True) if parts else pd.DataFrame()


def axis_value(value: Any) -> float | None:
    """A number to plot a key's value at: the number itself, or a list's first entry (the width of
    `model.hidden: [64, 64]`); None when the value is not a number."""
    if isinstance(value, str) and value.startswith("["):
        try:
            value = (yaml.safe_load(value) or [None])[0]
        except yaml.YAMLError:
            return None
    if isinstance(value, (int, float)) and not isinstance(value, bool) and not math.isnan(value):
        return float(value)
    return None


def interpolation_threshold(frame: pd.DataFrame, key: str, tolerance: float = 0.005) -> float | None:
    """The smallest value of `key` (as plotted) whose runs fit the training set: mean train error (train
    loss for mse) ≤ tolerance."""
    done = frame[frame["status"].isin(SUCCEEDED)]
    x = done[key].map(axis_value)
    # Squared error interpolates when its loss reaches 0; a classifier when every label is right.
    fit = "train_loss" if "loss" in done and (done["loss"] == "mse").all() else "train_error"
    fitted = done.assign(_x=x).dropna(subset=["_x"]).groupby("_x")[fit].mean()
    fitted = fitted[fitted <= tolerance]
    return float(fitted.index.min()) if len(fitted) else None


def _config_from_yaml(run_dir: Path) -> dict[str, Any]:
    try:
        return flatten(yaml.safe_load((run_dir / layout.CONFIG).read_text(encoding="utf-8")) or {})
    except (OSError, yaml.YAMLError):
        return {}


def parse_value(text: str) -> Any:
    """A value as YAML reads it (`0.1` a number, `[64, 64]` a list); what YAML reads as another type
    (a date) or cannot read stays text."""
    try:
        value = yaml.safe_load(text)
    except yaml.YAMLError:
        return text
    return value if value is None or isinstance(value, (str, int, float, bool, list, dict)) else text


def hashable(value: Any) -> Any:
    """Lists and mappings as compact YAML text (`[64, 64]`, `{start: 32, factor: 2.0}`): one cell each."""
    if isinstance(value, (list, dict)):
        return yaml.safe_dump(value, default_flow_style=True, sort_keys=False, width=10**6).strip()
    return value


def group_value(value: Any) -> Any:
    """A grouping key: NaN and None are one value."""
    return "∅" if value is None or (isinstance(value, float) and math.isnan(value)) else value


def sort_key(value: Any) -> tuple:
    """Numbers in order (a list by its first entry), then `full` (a batch as large as the data), then text."""
    if isinstance(value, str) and value.startswith("[") and axis_value(value) is not None:
        return (0, axis_value(value), value)
    if isinstance(value, (int, float)) and not isinstance(value, bool) and not math.isnan(value):
        return (0, float(value), "")
    if value == "full":
        return (1, 0.0, "")
    return (2, 0.0, str(value))


def _flip(key: tuple, descending: bool) -> tuple:
    return (key[0], -key[1], key[2]) if descending else key


def comparison(frame: pd.DataFrame, by: list[str] | None = None, columns: list[str] | None = None,
               sort: str = "test_error") -> tuple[pd.DataFrame, list[str], bool]:
    """The compare table: one row per run, or per group of seed replicates (or of the `by` keys).

    Returns the table, the key columns it shows, and whether its rows are groups (with *_std and n).
    """
    metrics = [metric for metric in (columns or METRICS) if metric != "status"]
    check_columns(frame, by or [], "--by")
    check_columns(frame, metrics, "--columns")
    varying, _ = varying_keys(frame)
    if by is not None:
        keys, grouped = by, True
    else:
        keys = [key for key in varying if key not in REPLICATES]
        grouped = any(key in varying for key in REPLICATES) and _has_replicates(frame, keys)
    sort_column = sort.lstrip("-")
    hidden = [] if sort_column in metrics + keys + varying + INFO else [sort_column]  # sort by it, not shown
    check_columns(frame, [sort_column], "--sort")
    if grouped:
        table = group(frame.assign(_all=0), keys or ["_all"], metrics + hidden).drop(columns="_all", errors="ignore")
        return sort_runs(table, sort).drop(columns=hidden + [f"{c}_std" for c in hidden]), keys, True
    table = frame[["run_id", *varying, *metrics, *hidden, "status", "path"]]
    return sort_runs(table, sort).drop(columns=hidden), varying, False


def _has_replicates(frame: pd.DataFrame, keys: list[str]) -> bool:
    if not keys:
        return len(frame) > 1
    return bool(frame.groupby([frame[key].map(group_value) for key in keys], dropna=False).size().max() > 1)


def plot_keys(frame: pd.DataFrame, by: list[str] | None) -> tuple[str, list[str]]:
    """The key to plot errors against (the first swept numeric key, or of `by`), and the keys that
    tell the lines apart."""
    swept = [key for key in (by or varying_keys(frame)[0]) if key not in REPLICATES]
    numeric = [key for key in swept if frame[key].map(axis_value).notna().any()]
    if not numeric:
        raise UserError("--plot: no swept numeric key to plot against (try --curves or --pivot)")
    return numeric[0], [key for key in swept if key != numeric[0]]


def replicate_groups(frame: pd.DataFrame, keys: list[str]) -> list[pd.DataFrame]:
    """The runs behind each row of a grouped comparison: those sharing the `keys` values (all runs
    when there are no keys), grouped as `group` groups them."""
    if not keys:
        return [frame]
    return [members for _, members in frame.groupby([frame[key].map(group_value) for key in keys],
                                                    sort=False, dropna=False)]

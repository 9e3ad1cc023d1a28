"""Comparing runs: load their summaries into one table, filter, group seed replicates, pivot.

Plain pandas, no torch: every run's summary.json carries its flattened config, so a folder of a
thousand runs loads in about a second.
"""
from __future__ import annotations

import math
import operator
import os
import re
from pathlib import Path
from typing import Any

import pandas as pd
import yaml

from dlcli import layout
from dlcli.config.flat import flatten
from dlcli.errors import UserError
from dlcli.layout import SUCCEEDED

METRICS = ["train_error", "test_error", "gap", "train_loss", "test_loss", "best_epoch"]
EXTRA_METRICS = ["best_test_error", "epochs_run", "steps", "seconds", "bayes_error", "parameters",
                 "val_loss", "val_error", "weight_norm", "sparsity", "restored_epoch"]
INFO = ["run_id", "status", "path"]
OPERATORS = {"==": operator.eq, "=": operator.eq, "!=": operator.ne, ">=": operator.ge, "<=": operator.le,
             ">": operator.gt, "<": operator.lt}


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
    """One row per run: run_id, status, path, every config key (dotted), and the final metrics."""
    records = []
    for run_dir in find_runs(paths):
        try:
            summary = layout.read_summary(run_dir)
        except (OSError, ValueError):
            continue  # a run being written for the first time; its summary appears atomically
        config = summary.get("config") or _config_from_yaml(run_dir)
        record = {key: _hashable(value) for key, value in config.items()}
        record |= {key: summary.get(key) for key in METRICS + EXTRA_METRICS}
        record |= {"run_id": summary.get("run_id", run_dir.name), "status": summary.get("status"),
                   "path": str(run_dir)}
        records.append(record)
    return pd.DataFrame.from_records(records)


def config_columns(frame: pd.DataFrame) -> list[str]:
    return [c for c in frame.columns if c not in INFO + METRICS + EXTRA_METRICS]


def varying_keys(frame: pd.DataFrame) -> tuple[list[str], dict[str, Any]]:
    """Config keys whose value differs between runs, and the rest with their one shared value."""
    varying, constant = [], {}
    for column in config_columns(frame):
        values = frame[column].map(_group_value).unique()
        if len(values) > 1:
            varying.append(column)
        else:
            constant[column] = frame[column].iloc[0]
    return varying, constant


def where(frame: pd.DataFrame, expressions: list[str]) -> pd.DataFrame:
    """Keep the rows where every `COLUMN OP VALUE` holds (OP: == != >= <= > <)."""
    for expression in expressions:
        found = re.fullmatch(r"\s*([\w.]+)\s*(==|!=|>=|<=|=|>|<)\s*(.+?)\s*", expression)
        if not found:
            raise UserError(f"--where {expression}: expected COLUMN OP VALUE, e.g. optim.lr>=0.1 "
                            "(OP: == != >= <= > <)")
        column, symbol, text = found.groups()
        check_columns(frame, [column], "--where")
        value = _hashable(yaml.safe_load(text))  # a list compares as its cell text: [64, 64]
        compare = OPERATORS[symbol]

        def holds(cell: Any) -> bool:
            try:
                return bool(compare(cell, value))
            except TypeError:  # e.g. 'full' > 32: not comparable, so not selected
                return symbol == "!="

        frame = frame[frame[column].map(holds)]
    return frame


def check_columns(frame: pd.DataFrame, columns: list[str], option: str) -> None:
    missing = [column for column in columns if column not in frame.columns]
    if missing:
        known = ", ".join(sorted(frame.columns))
        raise UserError([f"{option} {column}: unknown column (known: {known})" for column in missing])


def group(frame: pd.DataFrame, by: list[str], metrics: list[str]) -> pd.DataFrame:
    """Mean and std of each metric over the runs sharing the `by` values; `n` counts them."""
    rows = []
    for values, members in frame.groupby([frame[key].map(_group_value) for key in by], sort=False, dropna=False):
        row = {key: members[key].iloc[0] for key in by}
        for metric in metrics:
            numbers = pd.to_numeric(members[metric], errors="coerce")
            row[metric] = numbers.mean()
            row[f"{metric}_std"] = numbers.std(ddof=1) if numbers.count() > 1 else 0.0
        statuses = members["status"].value_counts()
        row["status"] = statuses.index[0] if len(statuses) == 1 else ", ".join(
            f"{n} {status}" for status, n in statuses.items())
        row["n"] = len(members)
        rows.append(row)
    return pd.DataFrame(rows)


def sort_runs(frame: pd.DataFrame, column: str) -> pd.DataFrame:
    """Sort by a column (`-column` for descending); runs that did not complete go to the bottom."""
    descending = column.startswith("-")
    column = column.lstrip("-")
    check_columns(frame, [column], "--sort")
    failed = ~frame["status"].isin(SUCCEEDED)
    keys = frame[column].map(sort_key)
    order = sorted(range(len(frame)), key=lambda i: (bool(failed.iloc[i]), _flip(keys.iloc[i], descending)))
    return frame.iloc[order].reset_index(drop=True)


def pivot(frame: pd.DataFrame, row_key: str, column_key: str, value: str) -> tuple[pd.DataFrame, pd.DataFrame]:
    """A grid of the mean `value` (rows × columns), and a grid of True where any run did not complete."""
    check_columns(frame, [row_key, column_key, value], "--pivot")
    cells = frame.assign(_failed=~frame["status"].isin(SUCCEEDED),
                         _value=pd.to_numeric(frame[value], errors="coerce"),
                         _row=frame[row_key].map(_group_value), _column=frame[column_key].map(_group_value))
    table = cells.pivot_table(index="_row", columns="_column", values="_value", aggfunc="mean", dropna=False)
    failed = cells.pivot_table(index="_row", columns="_column", values="_failed", aggfunc="any", dropna=False)
    row_order = sorted(table.index, key=sort_key)
    column_order = sorted(table.columns, key=sort_key)
    table = table.reindex(index=row_order, columns=column_order)
    failed = failed.reindex(index=row_order, columns=column_order).fillna(False).astype(bool)
    table.index.name, table.columns.name = row_key, column_key
    return table, failed


def read_curves(frame: pd.DataFrame, file: str = layout.METRICS) -> pd.DataFrame:
    """Per-epoch metrics (metrics.csv) or per-update losses (steps.csv) of the runs, long form,
    with a `run_id` column; runs without the file are left out."""
    parts = []
    for run_id, path in zip(frame["run_id"], frame["path"]):
        csv_path = Path(path) / file
        if csv_path.is_file():
            parts.append(pd.read_csv(csv_path).assign(run_id=run_id))
    return pd.concat(parts, ignore_index=True) if parts else pd.DataFrame()


def early_stopping_what_if(curves: pd.DataFrame, patience: int, metric: str) -> pd.DataFrame:
    """Per run, from its logged epochs: where patience P on `metric` would have stopped, the epoch it
    would have restored (the best so far), and the test error there, against the run's last epoch."""
    rows = []
    for run_id, run in curves.groupby("run_id", sort=False):
        run = run.sort_values("epoch")
        best_value, best, stop = float("inf"), run.iloc[0], None
        for _, epoch in run.iterrows():
            if epoch[metric] < best_value:
                best_value, best = epoch[metric], epoch
            if epoch["epoch"] - best["epoch"] >= patience:
                stop = epoch
                break
        last = run.iloc[-1]
        rows.append({"run_id": run_id, "stopped_at": int(stop["epoch"]) if stop is not None else None,
                     "restored_epoch": int(best["epoch"]), "test_error_restored": float(best["test_error"]),
                     "last_epoch": int(last["epoch"]), "test_error_last": float(last["test_error"]),
                     "epochs_saved": int(last["epoch"] - stop["epoch"]) if stop is not None else 0})
    return pd.DataFrame(rows)


def update_noise(steps: pd.DataFrame) -> pd.DataFrame:
    """Per run: updates, seconds, the last batch losses, and the noise of the per-update loss
    (standard deviation of the change from one update to the next)."""
    rows = []
    for run_id, run in steps.groupby("run_id", sort=False):
        losses = run["batch_loss"].to_numpy()
        tail = losses[-max(1, len(losses) // 10):]
        rows.append({"run_id": run_id, "updates": len(run), "seconds": run["seconds"].iloc[-1],
                     "final_batch_loss": float(tail.mean()),
                     "loss_noise": float(pd.Series(losses).diff().std()) if len(losses) > 2 else float("nan")})
    return pd.DataFrame(rows)


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


def _hashable(value: Any) -> Any:
    """Lists and mappings as compact YAML text (`[64, 64]`, `{start: 32, factor: 2.0}`): one cell each."""
    if isinstance(value, (list, dict)):
        return yaml.safe_dump(value, default_flow_style=True, sort_keys=False, width=10**6).strip()
    return value


def _group_value(value: Any) -> Any:
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
    check_columns(frame, metrics + (by or []), "--columns" if by is None else "--by/--columns")
    varying, _ = varying_keys(frame)
    if by is not None:
        keys, grouped = by, True
    else:
        keys = [key for key in varying if key != "seed"]
        grouped = "seed" in varying and _has_replicates(frame, keys)
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
    return bool(frame.groupby([frame[key].map(_group_value) for key in keys], dropna=False).size().max() > 1)


def plot_keys(frame: pd.DataFrame, by: list[str] | None) -> tuple[str, list[str]]:
    """The key to plot errors against (the first swept numeric key, or of `by`), and the keys that
    tell the lines apart."""
    swept = [key for key in (by or varying_keys(frame)[0]) if key != "seed"]
    numeric = [key for key in swept if frame[key].map(axis_value).notna().any()]
    if not numeric:
        raise UserError("--plot: no swept numeric key to plot against (try --curves or --pivot)")
    return numeric[0], [key for key in swept if key != numeric[0]]

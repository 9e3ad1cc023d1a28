"""A search folder read back: its trials in order, the chosen one, and the best-so-far curve (the
best validation metric after each trial, against trials and against the epochs trained so far).

The choice reads the validation metric only (dlcli.sweep.trials.best_trial); the chosen trial's test
error is shown beside it, never used.
"""
from __future__ import annotations

import io
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd
import yaml

from dlcli import layout
from dlcli.analysis.filters import where as keep_where
from dlcli.errors import UserError
from dlcli.sweep.trials import best_trial


def is_search(path: str | Path) -> bool:
    """A folder a search wrote: its journal and runs.csv."""
    return (Path(path) / layout.SEARCH_JOURNAL).is_file() and (Path(path) / layout.RUNS).is_file()


def search_settings(path: str | Path) -> dict[str, Any]:
    """sweep.yaml of a search: method, trials, metric, space, ..."""
    try:
        return yaml.safe_load((Path(path) / layout.SWEEP_SPEC).read_text(encoding="utf-8")) or {}
    except (OSError, yaml.YAMLError):
        raise UserError(f"{path}: not a readable search folder (no {layout.SWEEP_SPEC})") from None


def search_table(path: str | Path) -> tuple[pd.DataFrame, dict[str, Any] | None, dict[str, Any]]:
    """The trials (runs.csv, in trial order) with `epochs_total` (epochs trained up to and including
    each trial, a configuration sampled twice counted once), `best_so_far` (the lowest validation metric
    of the trials trained to the end so far) and `best` (True on the chosen trial); the chosen trial's
    row; and the search's settings."""
    settings = search_settings(path)
    metric = settings.get("metric", "val_error")
    text = (Path(path) / layout.RUNS).read_text(encoding="utf-8")
    table = pd.read_csv(io.StringIO(text), dtype={"run_id": str}).sort_values("trial").reset_index(drop=True)
    rows = table.to_dict("records")
    chosen = best_trial(rows, metric)
    seen: set[str] = set()
    totals, bests, best = [], [], float("nan")
    total = 0
    for row in rows:
        if row["run_id"] not in seen:
            seen.add(row["run_id"])
            total += int(row["epochs_run"]) if row.get("epochs_run") == row.get("epochs_run") else 0
        if best_trial([row], metric) is not None:  # trained to the end, with a finite metric
            best = min(best, float(row[metric])) if best == best else float(row[metric])
        totals.append(total)
        bests.append(best)
    table["epochs_total"], table["best_so_far"] = totals, bests
    table["best"] = table["trial"] == (chosen["trial"] if chosen else -1)
    return table, chosen, settings


@dataclass
class SearchView:
    """A search folder as the report shows it: `search_table`'s trials (those --where keeps), the
    chosen trial's row, the settings, and the trials and epochs of the whole search."""

    path: Path
    table: pd.DataFrame
    chosen: dict[str, Any] | None
    settings: dict[str, Any]
    trials: int
    epochs: int

    @property
    def metric(self) -> str:
        return self.settings.get("metric", "val_error")


def read_search(path: str | Path, where: list[str]) -> SearchView:
    table, chosen, settings = search_table(path)
    return SearchView(Path(path), keep_where(table, where), chosen, settings, len(table), epochs_trained(table))


def with_trials(frame: pd.DataFrame) -> pd.DataFrame:
    """Runs (`load_runs`) with, for those a search trained, their trial number (`trial`) and whether the
    search chose them (`chosen`), read from the search folder they lie in; the frame as it is when no
    run is a search's. A configuration sampled twice is one run: its first trial."""
    marks: dict[str, tuple[int, bool]] = {}
    for folder in sorted({Path(path).parent for path in frame.get("path", [])}):
        if is_search(folder):
            table, chosen, _ = search_table(folder)
            for trial, run_id in zip(table["trial"], table["run_id"]):
                marks.setdefault(str(folder / run_id), (int(trial), chosen is not None and run_id == chosen["run_id"]))
    if not marks:
        return frame
    found = [marks.get(str(Path(path))) for path in frame["path"]]
    return frame.assign(trial=[mark[0] if mark else None for mark in found],
                        chosen=[bool(mark and mark[1]) for mark in found])


def outcomes(table: pd.DataFrame, metric: str) -> list[tuple[pd.Series, str]]:
    """The trials by how they ended, each kind with the label its dots get in a best-so-far figure."""
    status = table["status"].astype(str)
    ended = status.isin([str(value) for value in layout.SUCCEEDED])
    pruned = status == layout.Status.PRUNED
    return [(ended, "a trial trained to the end"), (pruned, f"a pruned trial (its {metric} when stopped)"),
            (~ended & ~pruned, f"a trial that diverged or failed (its {metric} when it stopped)")]


def epochs_trained(table: pd.DataFrame) -> int:
    """What a search's trials trained in all (`search_table`'s running total, at its last trial)."""
    return int(table["epochs_total"].iloc[-1]) if len(table) else 0


def searches_table(paths: list[str | Path]) -> tuple[pd.DataFrame, dict[str, pd.DataFrame]]:
    """Several searches side by side: a row each (method, sampler seed, trials, epochs trained, the
    chosen trial, its validation metric, its test error), and each one's trials (`search_table`) by
    the path as given, for their best-so-far curves."""
    rows, tables = [], {}
    for path in paths:
        table, chosen, settings = search_table(path)
        metric = settings.get("metric", "val_error")
        tables[str(path)] = table
        rows.append({"search": str(path), "method": settings.get("method"), "sampler_seed": settings.get("seed"),
                     "trials": len(table), "epochs": epochs_trained(table),
                     "chosen_on": metric, "chosen": None if chosen is None else int(chosen["trial"]),
                     "chosen_value": None if chosen is None else chosen[metric],
                     "test_error": None if chosen is None else chosen["test_error"]})
    return pd.DataFrame(rows), tables

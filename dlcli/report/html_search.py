"""The report's part for a search folder: a line naming the choice, the trials table (each trial's
values, the validation metric it was chosen on, the test error beside it, epochs, status and the best
so far; the chosen trial starred) and the best-so-far chart (dlcli.report.html_charts)."""
from __future__ import annotations

from typing import Any

from dlcli.analysis.search import SearchView
from dlcli.errors import UserError
from dlcli.layout import SUCCEEDED, Status
from dlcli.report import html_charts as charts
from dlcli.report.html_page import Section, cell_sort_key, note_html, table_html
from dlcli.report.text import number_text, short_names, trial_name, value_text

RESULT_HEADERS = {"epochs_run": "epochs"}


def search_header(view: SearchView) -> str:
    """What was searched, and the choice: its validation metric, and its test error apart."""
    method, metric = view.settings.get("method", "random"), view.metric
    searched = f"{method} search, {view.trials} trials, {view.epochs} epochs trained in all, chosen on {metric}"
    chosen = view.chosen
    if chosen is None:
        return note_html(f"{searched}: no trial trained to the end with a finite {metric}")
    return note_html(f"{searched}: ★ trial {chosen['trial']}, {metric} {number_text(chosen[metric])}; its test error "
                     f"{number_text(chosen['test_error'])}, reported once, never used to choose")


def trial_names(view: SearchView) -> dict[str, str]:
    """Each trial's run id → `★ trial 3` (the chosen one) or `trial 5`; a run sampled twice, its first trial."""
    rows = view.table.sort_values("trial", ascending=False).to_dict("records")
    return {row["run_id"]: trial_name(row["trial"], row["best"]) for row in rows}


def search_sections(view: SearchView) -> list[Section]:
    shown = f"{len(view.table)} of {view.trials} trials" if len(view.table) < view.trials else "every trial"
    table = Section("trials", "Trials", note_html(f"{shown}, in trial order; click a header to sort") +
                    table_html(trials_payload(view)))
    chart = Section("best-so-far", f"Best {view.metric} so far", note_html(
        f"each trial's own {view.metric} as a dot (a pruned trial's where it stopped), the chosen one starred; "
        "the best so far counts every trial of the search"), charts.best_so_far_figure(view).to_json())
    return [table, chart, *importance_section(view)]


def importance_section(view: SearchView) -> list[Section]:
    """Each sampled key's share of the metric's variance (dlcli.analysis.importance) over the whole
    search; none when too few trials were measured at a common epoch, or Optuna is not installed."""
    from dlcli.analysis.importance import key_importance

    try:
        result = key_importance(view.path)
    except UserError:
        return []
    return [Section("importance", f"What {view.metric} depends on", note_html(
        f"each sampled key's share of the variance of {view.metric} over the {result.trials} trials at epoch "
        f"{result.epoch}, the latest every trial was measured at (fANOVA)"), charts.importance_figure(result).to_json())]


def trials_payload(view: SearchView) -> dict[str, Any]:
    """The trials as the page's table script reads them (html_page.table_html); the chosen row and the
    pruned ones styled apart."""
    keys = list(view.settings.get("space") or {})
    names = short_names(keys)
    results = {view.metric: "number", "test_error": "number", "epochs_run": "count", "status": "text",
               "best_so_far": "number", "run_id": "text"}  # runs.csv's column: how its cells read
    columns = [{"name": "trial", "kind": "number"}, *({"name": names[key], "kind": "text"} for key in keys),
               *({"name": RESULT_HEADERS.get(name, name), "kind": "text" if kind == "text" else "number"}
                 for name, kind in results.items())]
    rows = []
    for _, row in view.table.iterrows():
        cells = [("★ " if row["best"] else "") + str(int(row["trial"])), *(value_text(row[key]) for key in keys),
                 *(_result_text(row[name], kind) for name, kind in results.items())]
        rows.append({"cells": cells, "sort": [cell_sort_key(row[name]) for name in ["trial", *keys, *results]],
                     "failed": row["status"] not in SUCCEEDED, "className": _style(row),
                     "search": " ".join(f"{column['name']}={cell}" for column, cell in zip(columns, cells)).lower()})
    return {"columns": columns, "rows": rows}


def _result_text(value: Any, kind: str) -> str:
    if kind == "text":
        return str(value)
    if kind == "count":
        return "" if value != value else str(int(value))
    return number_text(value)


def _style(row: Any) -> str:
    if row["best"]:
        return "chosen"
    return "pruned" if row["status"] == Status.PRUNED else ("" if row["status"] in SUCCEEDED else "failed")

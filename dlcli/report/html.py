"""`dlcli report`: one self-contained HTML page of runs and sweeps (plotly.js inline, opens offline
from disk): the compare table (sortable, filterable), errors against a swept key, the heatmap of two
keys, learning curves, per-update losses, parallel coordinates, bias-variance and lr-find results; for
a search folder, its trials and the best so far instead of the grid's table and charts (html_search), and
which keys the validation metric depended on, and its parallel coordinates against that metric.

The numbers come from dlcli.analysis.report_data; the charts from dlcli.report.html_charts.
"""
from __future__ import annotations

import html
from pathlib import Path
from typing import Any

from dlcli.analysis.report_data import MAX_CURVES, ReportData
from dlcli.errors import UserError
from dlcli.layout import SUCCEEDED, atomic_write_text
from dlcli.report import html_charts as charts
from dlcli.report.compare import run_labels
from dlcli.report.html_page import Section, cell_sort_key, note_html, page, table_html
from dlcli.report.html_search import search_header, search_sections, trial_names
from dlcli.report.text import number_text, short_names, value_text

TABLE_METRICS = ["train_error", "test_error", "gap", "train_loss", "test_loss", "best_epoch"]


def require_plotly() -> None:
    """The report draws with plotly, an optional dependency: say how to get it."""
    try:
        import plotly  # noqa: F401
    except ImportError:
        raise UserError("dlcli report needs plotly: pip install 'dlcli[report]'") from None


def write_report(data: ReportData, path: str | Path, sources: list[str]) -> None:
    """The page for `data`, written atomically to `path`."""
    atomic_write_text(Path(path), report_html(data, sources))


def report_html(data: ReportData, sources: list[str]) -> str:
    from plotly.offline import get_plotlyjs

    title = "dlcli report: " + ", ".join(sources)
    return page(title, header_html(data), sections(data), get_plotlyjs())


def sections(data: ReportData) -> list[Section]:
    """The page's sections, in reading order; a chart appears only where the runs have its data."""
    found = []
    if data.search is not None:
        found += search_sections(data.search)
    elif data.table is not None:
        found.append(Section("runs", "Runs", "", None))
        found[-1].body = table_html(table_payload(data))
    if data.against is not None:
        found.append(Section("against", f"Error against {data.against.key}", note_html(
            "mean over seeds, ± std as a band; completed runs only"), charts.against_key_figure(data.against).to_json()))
    if data.heatmap is not None:
        table = data.heatmap.table
        found.append(Section("heatmap", f"{table.index.name} × {table.columns.name}", note_html(
            "mean test error, over seeds and any other key"), charts.heatmap_figure(data.heatmap).to_json()))
    if data.curves:
        rows, every = (f"trials on {data.search.metric}", "every trial") if data.search else \
            ("rows of the table", "every row of the table")
        shown = f"the best {len(data.curves)} of {len(data.table)} {rows}" \
            if data.table is not None and len(data.table) > MAX_CURVES else every
        bayes = data.against.bayes_error if data.against is not None else None
        found.append(Section("curves", "Learning curves", note_html(
            f"{shown}; seed replicates as their mean; hover for the config"),
            charts.curves_figure(data.curves, data.keys, bayes, "val" if data.search else "test",
                                 trial_names(data.search) if data.search else None).to_json()))
    if data.updates:
        found.append(Section("updates", "Loss per update", note_html("steps.csv, thinned to at most 200 points a run"),
                             charts.updates_figure(data.updates, run_labels(data.runs)).to_json()))
    if data.parallel is not None:
        value, trials = data.parallel.dimensions[-1]["label"], "the trials trained to the end; " if data.search else ""
        found.append(Section("parallel", f"Swept keys against {value}", note_html(
            f"{trials}drag along an axis to select a range"), charts.parallel_figure(data.parallel).to_json()))
    for index, study in enumerate(data.bias_variance):
        found.append(Section(f"bias-variance-{index}", f"Bias and variance ({Path(study.path).parent.name})",
                             bias_variance_table(study.rows, study.keys), charts.bias_variance_figure(study).to_json()))
    for index, run in enumerate(data.lr_finds):
        found.append(Section(f"lr-find-{index}", f"LR range test ({run.path.name})", lr_findnote_html(run.summary),
                             charts.lr_find_figure(run).to_json()))
    return found


def header_html(data: ReportData) -> str:
    """How many runs, how they ended, and the keys they all share."""
    if data.runs.empty:
        return note_html("no training runs here; the lr-find and bias-variance results below")
    searched = search_header(data.search) if data.search is not None else ""
    statuses = data.runs["status"].value_counts()
    ended = ", ".join(f"{count} {status}" for status, count in statuses.items())
    constant = " · ".join(f"{key}={value_text(value)}" for key, value in data.constant.items())
    return (searched + note_html(f"{len(data.runs)} runs: {ended}") +
            f"<details><summary>the same in every run</summary>{html.escape(constant)}</details>")


def table_payload(data: ReportData) -> dict[str, Any]:
    """The compare table as the page's script reads it: columns, and per row the shown text, a sort
    key per cell (compare's order: numbers, then `full`, then text; missing last), and whether the
    run (or any replicate) did not complete."""
    table, keys = data.table, data.keys
    metrics = [metric for metric in TABLE_METRICS if metric in table]
    last = ["status", "n"] if data.grouped else ["status", "run_id"]
    names = short_names(keys)
    columns = [{"name": names[key], "kind": "text"} for key in keys]
    columns += [{"name": metric, "kind": "number"} for metric in metrics]
    columns += [{"name": name, "kind": "number" if name == "n" else "text"} for name in last]
    rows = []
    for _, row in table.iterrows():
        cells = [value_text(row[key]) for key in keys]
        cells += [_metric_text(row, metric, data.grouped) for metric in metrics]
        cells += [str(row[name]) for name in last]
        keys_of_cells = [cell_sort_key(row[key]) for key in keys] + [cell_sort_key(row[metric]) for metric in metrics]
        keys_of_cells += [cell_sort_key(row[name]) for name in last]
        search = " ".join(f"{column['name']}={cell}" for column, cell in zip(columns, cells)).lower()
        rows.append({"cells": cells, "sort": keys_of_cells, "failed": row["status"] not in SUCCEEDED,
                     "search": search})
    return {"columns": columns, "rows": rows}


def _metric_text(row: Any, metric: str, grouped: bool) -> str:
    mean = row[metric]
    if not grouped or mean is None or mean != mean:
        return number_text(mean)
    std = row.get(f"{metric}_std")
    return f"{number_text(mean)} ± {number_text(std, 3)}" if std is not None and std == std else number_text(mean)


def bias_variance_table(rows: list[dict[str, Any]], keys: list[str]) -> str:
    columns = [*keys, "decomposition", "risk", "bias2", "variance", "variance_sampling", "variance_optimization",
               "noise", "bayes_error", "trials", "seeds"]
    columns = [column for column in columns if any(column in row for row in rows)]
    header = "".join(f"<th>{html.escape(column)}</th>" for column in columns)
    body = "".join("<tr>" + "".join(f"<td>{html.escape(_cell(row.get(column)))}</td>" for column in columns)
                   + "</tr>" for row in rows)
    return f'<div class="scroll"><table class="bias-variance"><tr>{header}</tr>{body}</table></div>'


def lr_findnote_html(summary: dict[str, Any]) -> str:
    suggested = summary.get("suggested_lr")
    if suggested is None:
        return note_html(str(summary.get("rule", "no suggestion")))
    cycle = f"; triangular cycle base_lr {summary['base_lr']:.3g}, max_lr {summary['max_lr']:.3g}" \
        if "max_lr" in summary else ""
    return note_html(f"suggested lr {suggested:.3g} ({summary.get('rule', '')}){cycle}")


def _cell(value: Any) -> str:
    return number_text(value) if isinstance(value, float) else value_text(value)

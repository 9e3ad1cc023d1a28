"""What a person sees of `dlcli compare`: run tables, replicate groups, heatmaps, curves, what-ifs."""
from __future__ import annotations

from typing import Any

from rich.table import Table

from dlcli.analysis.compare import axis_value, interpolation_threshold, sort_key, varying_keys
from dlcli.layout import SUCCEEDED, Status
from dlcli.report.console import console
from dlcli.report.fit import fitted, print_fitted
from dlcli.analysis import curves as curves_module
from dlcli.report.text import label_of, number_text, short_names, trial_name, value_text


def print_constant_keys(constant: dict[str, Any], runs: int, hidden: int) -> None:
    """The keys the runs share that a person set; how many more are at their defaults."""
    shown = " · ".join(f"{key}={value_text(value)}" for key, value in constant.items())
    console.print(f"[dim]{runs} runs; the same in all: {shown}" + (f"; the other {hidden} keys at their defaults"
                                                                    if hidden else "") + "[/]", soft_wrap=False)


def print_comparison(table, keys: list[str], grouped: bool, metrics: list[str]) -> None:
    """Rows of runs (or groups of replicates, mean ± std over n), best first, failures last and red. In a
    narrow terminal the last column (run_id or n) is left out first, then the metrics from the last, the
    first staying."""
    last = "n" if grouped else "run_id"
    forms = [(lambda: _comparison(table, keys, grouped, metrics, True), None)]
    for kept in range(len(metrics), 0, -1):
        forms.append((lambda kept=kept: _comparison(table, keys, grouped, metrics[:kept], False),
                      f"left out for the terminal's width: {', '.join([*metrics[kept:], last])} "
                      "(--format csv shows every column)"))
    print_fitted(forms)


def _comparison(table, keys: list[str], grouped: bool, metrics: list[str], with_last: bool) -> Table:
    view = Table()
    headers = short_names(keys)
    for key in keys:
        width = max([len(headers[key])] + [len(value_text(value)) for value in table[key]])
        view.add_column(headers[key], no_wrap=True, min_width=min(width, 24), max_width=32, overflow="ellipsis")
    for metric in metrics:
        view.add_column(metric, justify="right", no_wrap=True)
    view.add_column("status", no_wrap=True)
    if with_last:
        view.add_column("n" if grouped else "run_id", justify="right" if grouped else "left",
                        style=None if grouped else "dim", no_wrap=True)
    for position, (_, row) in enumerate(table.iterrows()):
        cells = [value_text(row[key]) for key in keys]
        for metric in metrics:
            cells.append(_mean_std(row[metric], row.get(f"{metric}_std")) if grouped else number_text(row[metric]))
        cells.append(str(row["status"]))
        if with_last:
            cells.append(str(row["n"]) if grouped else str(row["run_id"]))
        completed = row["status"] in SUCCEEDED
        style = "bold green" if position == 0 and completed else (
            None if completed else "dim" if row["status"] == Status.PRUNED else "red")
        view.add_row(*cells, style=style)
    return view


def print_pivot(table, failed, value: str) -> None:
    """A heatmap table: greener is lower `value`, the best cell starred, the best of each row bold, failed
    cells marked. In a narrow terminal the column headers are shortened to 3 significant digits, then
    the table is turned (rows become columns) when that fits."""
    finite = table.where(~failed).stack()
    low, high = (finite.min(), finite.max()) if len(finite) else (0.0, 1.0)
    best = finite.idxmin() if len(finite) else None
    heat = (low, high, best)
    rows, columns = table.index.name, table.columns.name
    turned = f"{value} by {columns} (rows) × {rows} (columns), turned to fit the terminal; ★ best, bold: best in " \
             "its column, ✗ a run diverged, failed or was stopped"
    forms = [(lambda digits=digits, turn=turn: _pivot(table, failed, heat, digits, turn), turned if turn else None)
             for digits, turn in ((6, False), (3, False), (3, True))]
    view, note = fitted(forms)
    console.print(note or f"{value} by {rows} (rows) × {columns} (columns); ★ best, bold: best in its row, "
                          "✗ a run diverged, failed or was stopped")
    console.print(view)


def _pivot(table, failed, heat: tuple, digits: int, turned: bool) -> Table:
    """The heatmap, its headers to `digits` significant digits (all of them if that would make two
    alike); `turned`: rows and columns swapped, the bold cells still the best of each original row."""
    low, high, best = heat
    rows_best = {row: table.loc[row].where(~failed.loc[row]).idxmin() for row in table.index
                 if table.loc[row].where(~failed.loc[row]).notna().any()}
    cells = {(row, column): _heat_cell(table.loc[row, column], failed.loc[row, column], (row, column) == best,
                                       rows_best.get(row) == column, low, high)
             for row in table.index for column in table.columns}
    row_keys, column_keys = (table.columns, table.index) if turned else (table.index, table.columns)
    headers = [value_text(key, digits) for key in column_keys]
    if len(set(headers)) < len(headers):
        headers = [value_text(key) for key in column_keys]
    view = Table()
    name = table.columns.name if turned else table.index.name
    view.add_column(name, no_wrap=True, min_width=len(str(name)))
    for header in headers:
        view.add_column(header, justify="right", no_wrap=True, min_width=len(header))
    for row_key in row_keys:
        view.add_row(value_text(row_key), *[cells[(column, row_key) if turned else (row_key, column)]
                                            for column in column_keys])
    return view


def _heat_cell(number: float, failed: bool, best: bool, row_best: bool, low: float, high: float) -> str:
    if failed:
        return "[white on red] ✗ [/]"
    if number != number:  # NaN: no run at this point
        return "[dim]·[/]"
    star, weight = ("★ " if best else ""), ("bold " if row_best else "")
    return f"[{weight}black on {_heat(number, low, high)}] {star}{number_text(number)} [/]"


RUN_LABEL_WIDTH = 40  # a run's label in a row per run wraps past this, leaving the width to the epochs


def print_curves(curves, labels: dict[str, str], rows: int = 12) -> None:
    """The error per epoch at most `rows` epochs (evenly spread), a column per run; in a terminal too narrow
    for that, a row per run with as many of the epochs as fit. Train / test, or the validation error
    where those were measured at the last epoch alone (`train.eval_splits: val`, a search's runs)."""
    epochs = sorted(curves["epoch"].unique())
    indexed = curves.set_index(["run_id", "epoch"])
    splits = curves_module.measured_splits(curves)
    forms = [(lambda: _curves_by_epoch(indexed, labels, _spread(epochs, rows), splits), None)]
    for count in sorted({min(count, len(epochs)) for count in (rows, 8, 6, 4, 3, 2)}, reverse=True):
        note = f"turned to fit the terminal: a row per run, {count} of the {len(epochs)} epochs measured"
        forms.append((lambda count=count: _curves_by_run(indexed, labels, _spread(epochs, count), splits), note))
    print_fitted(forms)


def _spread(epochs: list, count: int) -> list:
    """`count` of the epochs, evenly spread, the first and the last among them."""
    if len(epochs) <= count:
        return epochs
    step = (len(epochs) - 1) / (count - 1)
    return sorted({epochs[round(i * step)] for i in range(count)})


def _curves_title(splits: list[str]) -> str:
    return " / ".join({"val": "validation"}.get(split, split) for split in splits) + " error per epoch"


def _curves_by_epoch(indexed, labels: dict[str, str], epochs: list, splits: list[str]) -> Table:
    view = Table(title=_curves_title(splits), title_justify="left")
    view.add_column("epoch", justify="right", no_wrap=True)
    for run_id in labels:
        view.add_column(labels[run_id], justify="right", no_wrap=True)
    for epoch in epochs:
        view.add_row(str(int(epoch)), *[_errors_at(indexed, run_id, epoch, splits) for run_id in labels])
    return view


def _curves_by_run(indexed, labels: dict[str, str], epochs: list, splits: list[str]) -> Table:
    """A row per run; its label wraps where the terminal is narrow, never the numbers."""
    view = Table(title=_curves_title(splits), title_justify="left")
    view.add_column("run", max_width=RUN_LABEL_WIDTH)
    for epoch in epochs:
        view.add_column(f"epoch {int(epoch)}", justify="right", no_wrap=True)
    for run_id, label in labels.items():
        view.add_row(label, *[_errors_at(indexed, run_id, epoch, splits) for epoch in epochs])
    return view


def _errors_at(indexed, run_id: str, epoch, splits: list[str]) -> str:
    if (run_id, epoch) not in indexed.index:
        return ""
    point = indexed.loc[(run_id, epoch)]
    return " / ".join(number_text(point.get(f"{split}_error")) for split in splits)


def format_table(table, fmt: str) -> str:
    """The table as csv, markdown or json text, for scripts and documents."""
    if fmt == "csv":
        return table.to_csv(index=False)
    if fmt == "json":
        return table.to_json(orient="records", indent=2)
    header = "| " + " | ".join(map(str, table.columns)) + " |"
    rule = "|" + "|".join("---" for _ in table.columns) + "|"
    lines = ["| " + " | ".join(value_text(value) for value in row) + " |" for row in table.itertuples(index=False)]
    return "\n".join([header, rule, *lines]) + "\n"


def _heat(value: float, low: float, high: float) -> str:
    """Green at the lowest value, through yellow, to red at the highest."""
    t = 0.0 if high <= low else (value - low) / (high - low)
    red, green = (int(255 * min(1.0, 2 * t)), int(255 * min(1.0, 2 * (1 - t))))
    return f"rgb({max(red, 60)},{max(green, 60)},60)"


def _mean_std(mean: Any, std: Any) -> str:
    if mean is None or mean != mean:
        return "-"
    return f"{number_text(mean)} ±{number_text(std, 3)}" if std is not None and std == std else number_text(mean)


def print_update_noise(noise, labels: dict[str, str]) -> None:
    """Per run: how many updates, how long, where the loss ended, and how noisy each update was."""
    table = Table(title="per-update training loss", title_justify="left")
    for column in ("run", "updates", "seconds", "final batch loss", "loss noise (std of change per update)"):
        table.add_column(column, justify="left" if column == "run" else "right")
    indexed = noise.set_index("run_id")
    for run_id, label in labels.items():
        row = indexed.loc[run_id]
        table.add_row(label, str(int(row["updates"])), f"{row['seconds']:.2f}", number_text(row["final_batch_loss"]),
                      number_text(row["loss_noise"]))
    console.print(table)


def print_what_if(table, patience: int, metric: str) -> None:
    """Early stopping replayed on logged curves: where it would stop, what it would keep."""
    console.print(f"early stopping with patience {patience} on {metric}, replayed on the logged epochs")
    view = Table()
    for column in ("run", "stops at", "restores", "test error there", "last epoch", "test error at last",
                   "epochs saved"):
        view.add_column(column, justify="left" if column == "run" else "right")
    for _, row in table.iterrows():
        stopped = "-" if row["stopped_at"] is None or row["stopped_at"] != row["stopped_at"] else str(int(row["stopped_at"]))
        view.add_row(str(row["run"]), stopped, str(int(row["restored_epoch"])), number_text(row["test_error_restored"]),
                     str(int(row["last_epoch"])), number_text(row["test_error_last"]), str(int(row["epochs_saved"])))
    console.print(view)


def print_threshold(frame, keys: list[str]) -> None:
    """With one swept key (a width, a number of features), say where the training set is first fit."""
    if len(keys) != 1 or not keys[0].startswith("model.") or frame[keys[0]].map(axis_value).isna().any():
        return  # the threshold is about model size
    threshold = interpolation_threshold(frame, keys[0])
    if threshold is not None:
        fit = "loss" if "loss" in frame and (frame["loss"] == "mse").all() else "error"
        console.print(f"interpolation threshold: {keys[0]} = {threshold:g} is the smallest that fits the "
                      f"training set (mean train {fit} ≤ 0.005)")


def run_labels(frame) -> dict[str, str]:
    """Each run's label from the keys that differ between runs, in the keys' natural order; a search's
    trial (`with_trials`) first by its number, ★ on the one the search chose, the trials in their order."""
    varying = varying_keys(frame)[0]
    trial = (lambda row: row["trial"]) if "trial" in frame else (lambda row: None)
    ordered = sorted((row for _, row in frame.iterrows()),
                     key=lambda row: [sort_key(trial(row)), *[sort_key(row[k]) for k in varying]])
    return {row["run_id"]: run_label(row, varying) for row in ordered}


def run_label(row, varying: list[str]) -> str:
    """`★ trial 3: lr=0.1` for the trial a search chose (`trial 5: lr=0.2` another), `lr=0.1` for a run of
    no search; a trial alone (no key differs) is its number, another run its id."""
    trial = row.get("trial")
    if trial is None or trial != trial:  # no search's run: None, or NaN beside a search's runs
        return label_of(row, varying)
    name = trial_name(trial, row["chosen"])
    return f"{name}: {label_of(row, varying)}" if varying else name


def print_formatted(table, fmt: str) -> None:
    """A table as csv, markdown or json on standard output, verbatim."""
    console.print(format_table(table, fmt), end="", markup=False, highlight=False, soft_wrap=True)


def print_wrote(path) -> None:
    console.print(f"wrote {path}", soft_wrap=True)

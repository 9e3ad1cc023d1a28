"""What a person sees of a search: the plan (dry run), the chosen trial at the end, and `dlcli compare`
on a search folder (the trials, the chosen one starred, the best so far)."""
from __future__ import annotations

from typing import Any

from rich.table import Table

from dlcli.config.search import halving_without_rungs
from dlcli import layout
from dlcli.layout import SUCCEEDED, Status
from dlcli.report.console import console, print_note
from dlcli.report.fit import print_fitted
from dlcli.report.text import number_text, short_names, value_text


def print_search_plan(search, batch: int) -> None:
    """The space, the settings, and the epochs the search will train (asked `batch` trials at a time)."""
    settings = search.settings
    table = Table(title="search space", title_justify="left")
    table.add_column("key")
    table.add_column("distribution")
    for key, distribution in search.space.items():
        table.add_row(key, str(distribution))
    console.print(table)
    epochs = search.probes[0].train.epochs
    rungs = settings.rungs(epochs)
    halving = f"; successive halving at epochs {', '.join(map(str, rungs))} (eta {settings.eta})" if rungs else ""
    console.print(f"{settings.trials} trials ({settings.method}, seed {settings.seed}) of {epochs} epochs, chosen on "
                  f"{settings.metric}{halving}", soft_wrap=True)
    if rungs:
        console.print(_halving_budget(settings, epochs, batch), soft_wrap=True)
    console.print(f"{len(search.probes)} probe points valid. Nothing was written.")
    if note := halving_without_rungs(search):
        print_note(note)


def _halving_budget(settings, epochs: int, batch: int) -> str:
    """The epochs halving trains, against every trial to the end: exact for one batch (no trial
    diverging); with several, each batch halved alone, and later trials rank against earlier ones too."""
    sizes = [min(batch, settings.trials - start) for start in range(0, settings.trials, batch)]
    trained = sum(settings.epochs_of_batch(size, epochs) for size in sizes)
    full = f"of {settings.trials * epochs} without pruning"
    if len(sizes) == 1:
        return f"halving trains {trained} epochs in one batch of {sizes[0]} ({full})"
    return (f"halving trains about {trained} epochs in {len(sizes)} batches of up to {batch} ({full}); more where "
            "a later batch's trials rank among the earlier ones' at the rungs")


def print_search_result(result) -> None:
    """The tally, the chosen trial with its validation metric and, separately, its test error."""
    counts: dict[str, int] = {}
    for row in result.rows:
        counts[str(row["status"])] = counts.get(str(row["status"]), 0) + 1
    tally = ", ".join(f"{n} {status}" for status, n in counts.items())
    console.print(f"{len(result.rows)} trials: {tally}" + (f" ({result.skipped} already done, skipped)"
                                                           if result.skipped else ""))
    console.print(f"epochs trained: {result.epochs} of {result.full_epochs} without pruning "
                  f"({result.epochs / max(result.full_epochs, 1):.0%})")
    best = result.best
    if best is None:
        console.print(f"[red]no trial trained to the end with a finite {result.metric}[/]")
    else:
        keys = "  ".join(f"{key}={value_text(best[key])}" for key in result.keys)
        console.print(f"[bold green]best trial {best['trial']}[/] (chosen on {result.metric}): {keys}", soft_wrap=True)
        console.print(f"  {result.metric} {number_text(best[result.metric])}   then, once, its test error: "
                      f"{number_text(best['test_error'])}", soft_wrap=True)
        config = result.sweep_dir / str(best["run_id"]) / layout.CONFIG
        if config.is_file():  # not when its folder was cleaned away
            console.print(f"[dim]  that is one training's; its spread over seeds: dlcli sweep {config} --seeds 5[/]",
                          soft_wrap=True)
    console.print(f"sweep directory: {result.sweep_dir}  (dlcli compare {result.sweep_dir} --plot best.png)",
                  soft_wrap=True)


def print_search_table(table, chosen: dict[str, Any] | None, settings: dict[str, Any], trials: int,
                       epochs: int) -> None:
    """One row per trial shown (of `trials`, `epochs` trained in all): its values, validation metric,
    test error, epochs, status, and the best so far; the chosen trial starred. A column per key where
    the terminal is wide enough, else one column of `name value` pairs that wraps between pairs: a
    number is never cut in two."""
    metric = settings.get("metric", "val_error")
    keys = list(settings.get("space") or {})
    names = short_names(keys)  # the search's keys are its plan's and runs.csv's headers
    rows = [_search_cells(row, keys, metric) for _, row in table.iterrows()]
    count = f"{trials} trials" if len(table) == trials else f"{len(table)} of {trials} trials shown"
    title = f"{settings.get('method')} search, {count}, chosen on {metric}"
    shown = [names[key] for key in keys]
    print_fitted([(lambda one_column=one_column: _trials_table(title, shown, metric, rows, one_column), None)
                  for one_column in (False, True)])
    if chosen is not None:
        console.print(f"★ trial {chosen['trial']}: {metric} {number_text(chosen[metric])} (the choice); its test "
                      f"error {number_text(chosen['test_error'])} (reported, never used to choose)", soft_wrap=True)
    console.print(f"{epochs} epochs trained in all", soft_wrap=True)


Cells = tuple[str, list[str], list[str], str | None]  # trial, the keys' values, the results, style


def _trials_table(title: str, names: list[str], metric: str, rows: list[Cells], one_column: bool) -> Table:
    """A column per key, or (`one_column`, for a narrow terminal) their `name=value` pairs in one column,
    wrapped between pairs, with the results' headers on two lines."""
    view = Table(title=title, title_justify="left")
    view.add_column("trial", justify="right", no_wrap=True)
    for name in ["values"] if one_column else names:
        view.add_column(name, no_wrap=not one_column)
    for header in [metric.replace("_", " "), "test error", "epochs", "status", "best so far"]:
        view.add_column(header.replace(" ", "\n", 1) if one_column else header,
                        justify="left" if header == "status" else "right", no_wrap=True)
    for trial, values, results, style in rows:
        pairs = [f"{name}={value.replace(' ', '')}" for name, value in zip(names, values)]
        view.add_row(trial, *(["  ".join(pairs)] if one_column else values), *results, style=style)
    return view


def _search_cells(row, keys: list[str], metric: str) -> Cells:
    """A trial's cells (its values to 3 significant digits: runs.csv has them whole) and its style."""
    values = [value_text(row[key], digits=3) for key in keys]
    results = [number_text(row[metric]), number_text(row["test_error"]),
               "" if row["epochs_run"] != row["epochs_run"] else str(int(row["epochs_run"])),
               str(row["status"]), number_text(row["best_so_far"])]
    style = "bold green" if row["best"] else (None if row["status"] in SUCCEEDED else
                                              "dim" if row["status"] == Status.PRUNED else "red")
    return ("★ " if row["best"] else "") + str(int(row["trial"])), values, results, style


def print_searches(table) -> None:
    """Several searches, a row each: how each sampled, what it trained, and its choice (on validation)
    with the chosen trial's test error beside it."""
    def make() -> Table:
        view = Table(title="searches: each one's choice, made on validation", title_justify="left")
        view.add_column("search", max_width=40)
        for header in ("method", "seed", "trials", "epochs", "chosen", "on", "value", "test error"):
            view.add_column(header, justify="left" if header in ("method", "on") else "right", no_wrap=True)
        for _, row in table.iterrows():
            chosen = row["chosen"] == row["chosen"] and row["chosen"] is not None
            view.add_row(str(row["search"]), str(row["method"]), str(row["sampler_seed"]), str(row["trials"]),
                         str(row["epochs"]), f"★ {int(row['chosen'])}" if chosen else "-", str(row["chosen_on"]),
                         number_text(row["chosen_value"]), number_text(row["test_error"]))
        return view
    print_fitted([(make, None)])


def print_importance(result) -> None:
    """Each sampled key's share of the metric's variance (dlcli.analysis.importance), largest first,
    with a bar."""
    console.print(f"what {result.metric} depends on, at epoch {result.epoch} ({result.trials} trials measured "
                  f"there): each key's share of its variance (fANOVA main effects, normalized)", soft_wrap=True)
    table = Table(show_header=True, box=None)
    table.add_column("key")
    table.add_column("share", justify="right")
    table.add_column("")
    for key, share in result.shares.items():
        table.add_row(key, f"{share:.3f}", "█" * round(40 * share))
    console.print(table)

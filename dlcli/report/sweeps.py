"""What a person sees of a sweep: a line per finished run, the tally, the dry run, and a bias–variance
study's tables."""
from __future__ import annotations

import contextlib
from typing import Any, Iterator

from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn
from rich.table import Table

from dlcli.layout import FINISHED, Status
from dlcli.report.console import console
from dlcli.report.text import number_text, short_names, value_text


class SweepProgress:
    """One progress bar over a sweep's runs and a line per finished run. The bar shows once the
    sweep starts (its points are checked first: a mistake is reported without one)."""

    def __init__(self, progress: Progress, task: Any, total: int):
        self.progress, self.task, self.total = progress, task, total

    def skipped(self, count: int) -> None:
        """Points finished by an earlier invocation count as done from the start (a search's folder may
        hold more trials than --trials asks for now: all of them count)."""
        self._show()
        self.total = max(self.total, count)
        self.progress.update(self.task, total=self.total, completed=count)

    def finished(self, row: dict[str, Any]) -> None:
        """A run's line; it counts as done unless it was interrupted (it continues when run again)."""
        self._show()
        if row["status"] != Status.INTERRUPTED:
            self.progress.advance(self.task)
        self.progress.console.print(_run_line(row), soft_wrap=True)

    def _show(self) -> None:
        if not self.progress.live.is_started:
            self.progress.start()


@contextlib.contextmanager
def sweep_progress(total: int) -> Iterator[SweepProgress]:
    progress = Progress(
        TextColumn("[bold]sweep"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
        TextColumn("ETA"), TimeRemainingColumn(), console=console,
    )
    try:
        yield SweepProgress(progress, progress.add_task("sweep", total=total), total)
    finally:
        if progress.live.is_started:
            progress.stop()


def _run_line(row: dict[str, Any]) -> str:
    mark = {Status.COMPLETED: "[green]✓[/]", Status.EARLY_STOPPED: "[green]✓ early stopped[/]",
            Status.DIVERGED: "[red]✗ diverged[/]", Status.PRUNED: "[dim]✂ pruned[/]"}.get(
        row["status"], f"[red]✗ {row['status']}[/]")
    keys = "  ".join([f"{key}={value}" for key, value in row.items() if "." in key] + [f"seed={row['seed']}"])
    keys = f"trial {row['trial']}  {keys}" if "trial" in row else keys
    if "trial" in row and row.get("val_error") is not None:  # a search: chosen on validation
        result = (f"val error {number_text(row['val_error'])}  val loss {number_text(row['val_loss'])}  "
                  f"({row['seconds']:.1f} s)")
    elif row["status"] in FINISHED and row.get("test_error") is not None:
        result = f"test error {number_text(row['test_error'])}  ({row['seconds']:.1f} s)"
    else:
        result = row.get("message") or ""
    return f"{mark} {keys}  {result}"


def print_sweep_result(result) -> None:
    counts: dict[str, int] = {}
    for row in result.rows:
        counts[row["status"]] = counts.get(row["status"], 0) + 1
    tally = ", ".join(f"{n} {status}" for status, n in counts.items())
    console.print(f"{len(result.rows)} runs: {tally}" + (f" ({result.skipped} already done, skipped)"
                                                         if result.skipped else ""))
    for row in result.failed:
        console.print(f"[red]{row['status']}:[/] {row['run_id']}: {row.get('message') or ''}", soft_wrap=True)
    console.print(f"sweep directory: {result.sweep_dir}  (dlcli compare {result.sweep_dir})", soft_wrap=True)


def print_dry_run(sweep, seconds: float) -> None:
    table = Table()
    table.add_column("#", justify="right")
    for key in sweep.spec.keys:
        table.add_column(key)
    for index, point in enumerate(sweep.points[:20]):
        table.add_row(str(index + 1), *(str(point.get(key, "")) for key in sweep.spec.keys))
    console.print(table)
    if len(sweep.points) > 20:
        console.print(f"… and {len(sweep.points) - 20} more")
    console.print(f"{len(sweep.points)} runs, every point valid; estimated {_duration(seconds)} "
                  "with one worker. Nothing was written.")


def _duration(seconds: float) -> str:
    if seconds < 90:
        return f"{seconds:.0f} s"
    if seconds < 5400:
        return f"{seconds / 60:.1f} min"
    return f"{seconds / 3600:.1f} h"


# ---- bias-variance -------------------------------------------------------------------------------

_DECOMPOSITION_TITLES = {
    "mse": "squared error: risk = bias² + variance{noise}",
    "cross_entropy": "cross-entropy (geometric-mean f̄): risk = bias² + variance, bias² holds the noise",
    "zero_one": "0-1 error (Domingos): bias = the majority vote is wrong, variance = disagreeing with it; "
                "not additive",
}


NUMBER_WIDTH = len("0.1234")  # number_text's


def print_bias_variance(rows: list[dict[str, Any]], keys: list[str], incomplete: list[str], path: str,
                        plot: str | None) -> None:
    """One table per decomposition, a row per grid point; the variance's two parts where measured."""
    for name, title in _DECOMPOSITION_TITLES.items():
        members = [row for row in rows if row["decomposition"] == name]
        if not members:
            continue
        noise = any(row["noise"] is not None for row in members)
        split = name != "zero_one"
        columns = [*keys, "risk", "bias" if name == "zero_one" else "bias²", "variance"]
        columns += ["sampling", "optimization"] if split else []
        columns += ["noise"] if noise else []
        columns += ["Bayes"] if any(row["bayes_error"] is not None for row in members) else []
        console.print(f"[bold]{title.format(noise=' + noise' if noise else '')}[/]", soft_wrap=True)
        table, names = Table(), short_names(keys)
        numbers = [max(len(column), NUMBER_WIDTH) for column in columns if column not in keys]
        room = (console.width - sum(numbers) - 3 * len(columns) - 1) // max(len(keys), 1)  # what the keys can have
        for column in columns:  # a key's values may fold over lines; a number is never cut (a header may be)
            if column in keys:
                widest = max(len(value_text(row[column])) for row in members)
                table.add_column(names[column], overflow="fold", min_width=max(3, min(widest, room)))
            else:
                table.add_column(column, justify="right", no_wrap=True, min_width=NUMBER_WIDTH)
        for row in members:
            cells = [value_text(row[key]) for key in keys]
            cells += [number_text(row[key]) for key in ("risk", "bias2", "variance")]
            cells += [number_text(row[key]) for key in ("variance_sampling", "variance_optimization")] if split else []
            cells += [number_text(row["noise"])] if noise else []
            cells += [number_text(row["bayes_error"])] if "Bayes" in columns else []
            table.add_row(*cells)
        console.print(table)
    if rows:
        first = rows[0]
        note = "" if first["seeds"] > 1 else "; --seeds 2 or more splits the variance into sampling and optimization"
        console.print(f"{first['trials']} training sets ({first['split']}) × {first['seeds']} seeds per grid point, "
                      f"one test set of {first['n_test']}{note}", soft_wrap=True)
    for problem in incomplete:
        console.print(f"[red]left out:[/] {problem}", soft_wrap=True)
    console.print(f"wrote {path}" + (f" and {plot}" if plot else ""), soft_wrap=True)

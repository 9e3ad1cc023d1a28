"""Everything a person sees: progress bars and rich tables. Nothing else builds output."""
from __future__ import annotations

import contextlib
from typing import Any, Callable, Iterator

from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn
from rich.table import Table


console = Console(highlight=False)
error_console = Console(stderr=True, highlight=False)


def print_problems(problems: list[str]) -> None:
    for problem in problems:
        error_console.print(f"[bold red]error:[/] {escape(problem)}", soft_wrap=True)


@contextlib.contextmanager
def epoch_progress(name: str, epochs: int) -> Iterator[Callable[[dict[str, float]], None]]:
    """A progress bar over epochs; yields the function to call with each epoch's metrics row."""
    progress = Progress(
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("train loss {task.fields[train_loss]}  test error {task.fields[test_error]}"),
        TimeElapsedColumn(),
        TimeRemainingColumn(),
        console=console,
        transient=False,
    )
    task = progress.add_task(name, total=epochs, train_loss="-", test_error="-")

    def update(row: dict[str, float]) -> None:
        progress.update(task, completed=row["epoch"], train_loss=f"{row['train_loss']:.4f}",
                        test_error=f"{row['test_error']:.4f}")

    with progress:
        yield update


def print_run(summary: dict[str, Any], run_dir: str) -> None:
    """The end-of-run report: train against test, the gap, the best epoch, the Bayes error."""
    console.print(f"[bold]{summary['name']}[/] · {summary['status']}")
    table = Table()
    for column in ("", "loss", "error"):
        table.add_column(column, justify="right" if column else "left")
    table.add_row("train", number_text(summary["train_loss"]), number_text(summary["train_error"]))
    table.add_row("test", number_text(summary["test_loss"]), number_text(summary["test_error"]))
    table.add_row("gap (test − train)", "", number_text(summary["gap"]))
    if summary.get("best_epoch") is not None:
        table.add_row(f"best test (epoch {summary['best_epoch']})", "", number_text(summary["best_test_error"]))
    if summary.get("bayes_error") is not None:
        table.add_row("Bayes error", "", number_text(summary["bayes_error"]))
    console.print(table)
    console.print(
        f"{summary['epochs_run']} epochs, {summary['steps']} steps, {summary['parameters']:,} parameters, "
        f"{summary['device']}, {summary['seconds']:.1f} s"
    )
    if summary.get("message"):
        style = "yellow" if summary["status"] == "interrupted" else "red"
        console.print(f"[{style}]{summary['status']}:[/] {summary['message']}")
    console.print(f"run directory: {run_dir}", soft_wrap=True)


def print_evaluation(evaluation: dict[str, Any], path: str) -> None:
    console.print(f"[bold]{evaluation['run_id']}[/] · {evaluation['split']} split, {evaluation['samples']} samples")
    headline = Table()
    headline.add_column("metric")
    headline.add_column("value", justify="right")
    headline.add_row("loss", number_text(evaluation["loss"]))
    headline.add_row("error", number_text(evaluation["error"]))
    if evaluation.get("ece") is not None:
        headline.add_row("expected calibration error", number_text(evaluation["ece"]))
    if evaluation.get("bayes_error") is not None:
        headline.add_row("Bayes error", number_text(evaluation["bayes_error"]))
    console.print(headline)
    if "per_class" in evaluation:
        console.print(_per_class_table(evaluation["per_class"]))
        console.print(_confusion_table(evaluation["classes"], evaluation["confusion"]))
    console.print(f"wrote {path}", soft_wrap=True)


def _per_class_table(per_class: list[dict[str, Any]]) -> Table:
    table = Table(title="per class", title_justify="left")
    for column in ("class", "support", "error", "precision", "recall"):
        table.add_column(column, justify="left" if column == "class" else "right")
    for row in per_class:
        table.add_row(row["class"], str(row["support"]), number_text(row["error"]), number_text(row["precision"]),
                      number_text(row["recall"]))
    return table


def _confusion_table(classes: list[str], confusion: list[list[int]]) -> Table:
    table = Table(title="confusion matrix (rows: true class, columns: predicted)", title_justify="left")
    table.add_column("true \\ pred")
    for name in classes:
        table.add_column(name, justify="right")
    for name, counts in zip(classes, confusion):
        table.add_row(name, *(f"[bold]{count}[/]" if i == classes.index(name) else str(count)
                              for i, count in enumerate(counts)))
    return table


def number_text(value: Any, decimals: int = 4) -> str:
    if value is None or value != value:
        return "-"
    if isinstance(value, int):
        return str(value)
    return f"{value:.{decimals}f}" if abs(value) < 1e5 else f"{value:.2e}"  # a diverged loss can be 1e30


class SweepProgress:
    """One progress bar over a sweep's runs and a line per finished run."""

    def __init__(self, progress: Progress, task: Any):
        self.progress, self.task = progress, task

    def skipped(self, count: int) -> None:
        """Points finished by an earlier invocation count as done from the start."""
        self.progress.update(self.task, completed=count)

    def finished(self, row: dict[str, Any]) -> None:
        self.progress.advance(self.task)
        self.progress.console.print(_run_line(row), soft_wrap=True)


@contextlib.contextmanager
def sweep_progress(total: int) -> Iterator[SweepProgress]:
    progress = Progress(
        TextColumn("[bold]sweep"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
        TextColumn("ETA"), TimeRemainingColumn(), console=console,
    )
    with progress:
        yield SweepProgress(progress, progress.add_task("sweep", total=total))


def print_note(text: str) -> None:
    """A line about how a sweep runs (what trains stacked, what one by one), said once."""
    console.print(f"[dim]{text}[/]", soft_wrap=True)


def _run_line(row: dict[str, Any]) -> str:
    mark = {"completed": "[green]✓[/]", "early_stopped": "[green]✓ early stopped[/]",
            "diverged": "[red]✗ diverged[/]"}.get(row["status"], f"[red]✗ {row['status']}[/]")
    keys = "  ".join([f"{key}={value}" for key, value in row.items() if "." in key] + [f"seed={row['seed']}"])
    if row["status"] in ("completed", "early_stopped", "diverged") and row.get("test_error") is not None:
        result = f"test error {row['test_error']:.4f}  ({row['seconds']:.1f} s)"
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


def value_text(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, float) and value != value:
        return "-"
    return f"{value:g}" if isinstance(value, float) else str(value)


def print_lr_find(result, run_dir: str, plot) -> None:
    rows = result.rows
    table = Table(title="loss against learning rate (every tenth step)", title_justify="left")
    for column in ("step", "lr", "loss", "smoothed", "accuracy"):
        table.add_column(column, justify="right")
    for row in rows[:: max(1, len(rows) // 10)]:
        table.add_row(str(row["step"]), f"{row['lr']:.3g}", number_text(row["loss"]), number_text(row["smoothed_loss"]),
                      number_text(row["accuracy"]))
    console.print(table)
    if result.stopped_early:
        console.print(f"stopped after {len(rows)} steps: the loss blew up")
    if result.suggested_lr is None:
        console.print(f"[yellow]no suggestion:[/] {result.rule}")
    else:
        console.print(f"suggested lr: [bold]{result.suggested_lr:.3g}[/] ({result.rule})")
        cycle = result.triangular
        console.print(f"triangular schedule: max_lr {cycle['max_lr']:.3g} (a third of the lr at the lowest loss, "
                      f"{cycle['lowest_loss_lr']:.3g}), base_lr {cycle['base_lr']:.3g} (max_lr / 4)")
    console.print(f"wrote {run_dir}/lr_find.csv" + (f" and {plot}" if plot else ""), soft_wrap=True)


# ---- bias-variance -------------------------------------------------------------------------------

_DECOMPOSITION_TITLES = {
    "mse": "squared error: risk = bias² + variance{noise}",
    "cross_entropy": "cross-entropy (geometric-mean f̄): risk = bias² + variance, bias² holds the noise",
    "zero_one": "0-1 error (Domingos): bias = the majority vote is wrong, variance = disagreeing with it; "
                "not additive",
}


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
        table = Table()
        for column in columns:
            table.add_column(column, justify="left" if column in keys else "right")
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


def print_loss_table(classes: list[str], target: list[float], rows: list[dict[str, Any]]) -> None:
    """Entropy, KL and cross-entropy per prediction: H(p, q) = H(p) + KL(p ‖ q), and H(q, p) ≠ H(p, q)."""
    console.print("target p: " + ", ".join(f"{name}={value:g}" for name, value in zip(classes, target)))
    table = Table()
    for column in ("prediction q", "H(p)", "KL(p ‖ q)", "H(p, q) = H(p) + KL", "H(q, p)"):
        table.add_column(column, justify="left" if column == "prediction q" else "right")
    for row in rows:
        table.add_row(row["prediction"], f"{row['H(p)']:.3f}", f"{row['KL(p||q)']:.3f}", f"{row['H(p,q)']:.3f}",
                      f"{row['H(q,p)']:.3f}" if row["H(q,p)"] != float("inf") else "inf")
    console.print(table)

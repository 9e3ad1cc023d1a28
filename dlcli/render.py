"""Everything a person sees: progress bars and rich tables. Nothing else builds output."""
from __future__ import annotations

import contextlib
from typing import Any, Callable, Iterator

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn
from rich.table import Table

console = Console(highlight=False)
error_console = Console(stderr=True, highlight=False)


def print_problems(problems: list[str]) -> None:
    for problem in problems:
        error_console.print(f"[bold red]error:[/] {problem}", markup=True, soft_wrap=True)


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
    table.add_row("train", _number(summary["train_loss"]), _number(summary["train_error"]))
    table.add_row("test", _number(summary["test_loss"]), _number(summary["test_error"]))
    table.add_row("gap (test − train)", "", _number(summary["gap"]))
    if summary.get("best_epoch") is not None:
        table.add_row(f"best test (epoch {summary['best_epoch']})", "", _number(summary["best_test_error"]))
    if summary.get("bayes_error") is not None:
        table.add_row("Bayes error", "", _number(summary["bayes_error"]))
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
    headline.add_row("loss", _number(evaluation["loss"]))
    headline.add_row("error", _number(evaluation["error"]))
    if evaluation.get("ece") is not None:
        headline.add_row("expected calibration error", _number(evaluation["ece"]))
    if evaluation.get("bayes_error") is not None:
        headline.add_row("Bayes error", _number(evaluation["bayes_error"]))
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
        table.add_row(row["class"], str(row["support"]), _number(row["error"]), _number(row["precision"]),
                      _number(row["recall"]))
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


def _number(value: float | None) -> str:
    return "-" if value is None else f"{value:.4f}"

"""The terminal: one console for output and one for errors, progress bars, and notes. Every table and
line a person sees is printed through these (dlcli.report.runs, .sweeps, .compare).
"""
from __future__ import annotations

import contextlib
from typing import Callable, Iterator

from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

from dlcli.report.text import number_text

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
        if not progress.live.is_started:  # shown from the first epoch on: not while the data load
            progress.start()
        progress.update(task, completed=row["epoch"], train_loss=number_text(row["train_loss"], 4),
                        test_error=number_text(row["test_error"], 4))

    try:
        yield update
    finally:
        if progress.live.is_started:
            progress.stop()


def print_note(text: str) -> None:
    """A line about how a sweep runs (what trains stacked, what one by one), said once."""
    console.print(f"[dim]{text}[/]", soft_wrap=True)

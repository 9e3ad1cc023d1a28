"""What a person sees of `dlcli runs`, `dlcli diff`, `dlcli tag` and `dlcli clean`."""
from __future__ import annotations

import json
import shlex
from pathlib import Path
from typing import Any

import pandas as pd
from rich.markup import escape
from rich.table import Table

from dlcli.analysis.manage import ABSENT, CleanResult, RunDiff
from dlcli.layout import SUCCEEDED, Status
from dlcli.report.compare import print_formatted
from dlcli.report.console import console
from dlcli.report.text import number_text, value_text


def print_runs(listing, fmt: str) -> None:
    """The runs, newest first: a table, or csv / json with every column for scripts."""
    if fmt != "table":
        print_formatted(listing, fmt)
        return
    if listing.empty:
        console.print("no runs match")
        return
    notes = listing["note"].notna().any()
    view = Table()
    view.add_column("name")
    view.add_column("run id", no_wrap=True, min_width=max(len(str(run_id)) for run_id in listing["run_id"]))
    view.add_column("status")
    for column in ("age", "epochs", "test error"):
        view.add_column(column, justify="right")
    view.add_column("tags")
    if notes:
        view.add_column("note")
    for _, row in listing.iterrows():
        cells = [escape(str(row["name"])), str(row["run_id"]), _status_cell(row["status"], row["live"]),
                 age_text(row["age_seconds"]), number_text(_integer(row["epochs_run"])), number_text(row["test_error"]),
                 escape(row["tags"])]
        view.add_row(*cells, *([escape(row["note"]) if isinstance(row["note"], str) else ""] if notes else []))
    console.print(view)
    console.print("1 run" if len(listing) == 1 else f"{len(listing)} runs", soft_wrap=True)


def _status_cell(status: str, live: Any) -> str:
    if status == Status.RUNNING:
        return "[yellow]running[/]" if live else "[red]running (process gone)[/]"
    if status == Status.PRUNED:
        return "[dim]pruned[/]"  # a search's choice, not a failure
    return str(status) if status in SUCCEEDED else f"[red]{status}[/]"


def age_text(seconds: Any) -> str:
    """45s, 12m, 3h, 5d: how long ago a run started."""
    if seconds is None or seconds != seconds:
        return "-"
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size:
            return f"{int(seconds // size)}{unit}"
    return f"{max(int(seconds), 0)}s"


def size_text(size: int) -> str:
    """A number of bytes as B, KB, MB or GB (powers of 1024)."""
    for unit, scale in (("GB", 2**30), ("MB", 2**20), ("KB", 2**10)):
        if size >= scale:
            return f"{size / scale:.1f} {unit}"
    return f"{size} B"


def print_diff(diff: RunDiff) -> None:
    """The config keys that differ, the environment keys that differ, and the final metrics of A and B."""
    for label, run in zip("AB", diff.runs):
        console.print(f"[bold]{label}[/] {escape(str(run))}", soft_wrap=True)
    if diff.config:
        _print_pairs(f"config: {_keys_differ(diff.config)}", diff.config)
    else:
        console.print(f"config: the same (hash {diff.config_hashes[0]})")
    if diff.environment is None:
        having = [label for label, has in zip("AB", diff.environment_files) if has]
        console.print(f"environment: environment.json only in {having[0]}" if having else
                      "environment: neither run has an environment.json")
    elif diff.environment:
        _print_pairs(f"environment: {_keys_differ(diff.environment)}", diff.environment)
    else:
        console.print("environment: the same")
    _print_pairs("final metrics", diff.metrics, difference=True)


def _keys_differ(rows: list) -> str:
    return "1 key differs" if len(rows) == 1 else f"{len(rows)} keys differ"


def _print_pairs(title: str, rows: list[tuple[str, Any, Any]], difference: bool = False) -> None:
    view = Table(title=title, title_justify="left")
    view.add_column("key")
    view.add_column("A", justify="right" if difference else "left")
    view.add_column("B", justify="right" if difference else "left")
    if difference:
        view.add_column("B − A", justify="right")
    for key, a, b in rows:
        cells = [escape(key), _cell(key, a, difference), _cell(key, b, difference)]
        if difference:
            numbers = all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in (a, b))
            cells.append(number_text(b - a) if numbers else "")
        view.add_row(*cells)
    console.print(view)


def _cell(key: str, value: Any, metric: bool) -> str:
    """A metric with the table's decimals; a config or environment value as written (the command as a
    shell line)."""
    if value is ABSENT:
        return "[dim](absent)[/]"
    if key == "command" and isinstance(value, list):
        return escape(shlex.join(map(str, value)))
    if isinstance(value, (list, dict)):
        return escape(json.dumps(value))
    return number_text(value) if metric and isinstance(value, float) else escape(value_text(value))


def print_tagged(written: dict[Path, dict[str, Any]]) -> None:
    """Each run with the tags (and note) it has now."""
    for run, content in written.items():
        tags = ", ".join(f"{key}={value}" for key, value in content["tags"].items()) or "no tags"
        note = f" · note: {content['note']}" if content["note"] else ""
        console.print(f"{escape(str(run))}: {escape(tags + note)}", soft_wrap=True)


def print_clean(result: CleanResult) -> None:
    """What was removed (or would be, with --dry-run), the live runs kept, and the sweeps' runs.csv reset."""
    verb = "would remove" if result.dry_run else "removed"
    if result.removed:
        view = Table(title=verb, title_justify="left")
        for column in ("run", "status", "size"):
            view.add_column(column, justify="right" if column == "size" else "left")
        for removal in result.removed:
            view.add_row(escape(str(removal.path)), _status_cell(removal.status, live=False), size_text(removal.bytes))
        console.print(view)
    for path, summary in result.live:
        console.print(f"[yellow]kept[/] {escape(str(path))}: running, process {summary.get('pid')} on "
                      f"{summary.get('host')} is alive", soft_wrap=True)
    for runs_csv, run_ids in result.reset.items():
        points = "1 point" if len(run_ids) == 1 else f"{len(run_ids)} points"
        console.print(f"{escape(str(runs_csv))}: {points} {'would go' if result.dry_run else 'went'} back to pending",
                      soft_wrap=True)
    if not result.removed:
        console.print("nothing to remove")
    elif result.dry_run:
        console.print(f"dry run: {verb} {len(result.removed)} runs, {size_text(result.freed)}; nothing was removed")
    else:
        console.print(f"{verb} {len(result.removed)} runs, freed {size_text(result.freed)}")


def _integer(value: Any) -> int | None:
    return None if pd.isna(value) else int(value)

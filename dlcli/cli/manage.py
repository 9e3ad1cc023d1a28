"""Keeping results in order: list runs, diff two runs, tag runs, clean out the ones that did not finish."""
from __future__ import annotations

from pathlib import Path
from typing import List, Optional

import typer

from dlcli.cli.app import app, user_errors_exit_2
from dlcli.errors import UserError

LIST_FORMATS = ("table", "csv", "json")


@app.command("runs")
@user_errors_exit_2
def runs_(
    roots: Optional[List[Path]] = typer.Argument(None, help="Results roots, sweep folders or runs "
                                                 "(default: results).", show_default=False),
    where: Optional[List[str]] = typer.Option(None, "--where", help="Keep runs where COLUMN OP VALUE holds, as "
                                              "in dlcli compare: optim.lr>=0.1, tag.baseline=true (repeatable).",
                                              show_default=False),
    status: Optional[str] = typer.Option(None, "--status", help="Keep runs with these statuses, comma-separated: "
                                         "running,interrupted.", show_default=False),
    fmt: str = typer.Option("table", "--format", help="table | csv | json"),
) -> None:
    """List runs, newest first: name, run id, status, age, epochs, test error and tags.

    A `running` run whose process is gone (killed without a word) says so.

    Example: dlcli runs results --status running,interrupted
    """
    from dlcli.analysis.manage import list_runs, parse_statuses
    from dlcli.report.manage import print_runs

    if fmt not in LIST_FORMATS:
        raise UserError(f"--format: unknown format {fmt!r} (allowed: {', '.join(LIST_FORMATS)})")
    listing = list_runs(list(roots or [Path("results")]), list(where or []), parse_statuses(status))
    print_runs(listing, fmt)


@app.command("diff")
@user_errors_exit_2
def diff(
    run_a: Path = typer.Argument(..., help="A run folder.", show_default=False),
    run_b: Path = typer.Argument(..., help="Another run folder.", show_default=False),
) -> None:
    """Two runs side by side: the config keys and environment that differ, and the final metrics.

    The environment (environment.json) is the versions, git commit, machine and command line.

    Example: dlcli diff results/quickstart/20261127-103811-9e3eb8 results/quickstart/20261127-104502-41c0aa
    """
    from dlcli.analysis.manage import diff_runs
    from dlcli.report.manage import print_diff

    print_diff(diff_runs(run_a, run_b))


@app.command("tag")
@user_errors_exit_2
def tag(
    runs_and_tags: List[str] = typer.Argument(..., help="Run folders and KEY=VALUE tags, in any order (an empty VALUE "
                                      "removes the tag).", show_default=False),
    note: Optional[str] = typer.Option(None, "--note", help="A note on the runs (\"\" removes it).",
                                       show_default=False),
) -> None:
    """Tag runs KEY=VALUE, and add a note, to find them with --where tag.KEY=VALUE.

    Tags live in tags.json beside summary.json (the config and its hash stay as they are).

    Example: dlcli tag results/quickstart/20261127-103811-9e3eb8 baseline=true --note "before the lr change"
    """
    from dlcli.components.tags import tag_runs
    from dlcli.report.manage import print_tagged

    assignments = [item for item in runs_and_tags if "=" in item]
    print_tagged(tag_runs([item for item in runs_and_tags if "=" not in item], assignments, note))


@app.command("clean")
@user_errors_exit_2
def clean(
    root: Path = typer.Argument(..., help="A results root, sweep folder or run.", show_default=False),
    status: str = typer.Option("failed", "--status", help="Remove runs with these statuses, comma-separated "
                               "(interrupted and killed running runs can be resumed: name them to remove them); "
                               "a running run whose process is alive is never removed."),
    dry_run: bool = typer.Option(False, "--dry-run", help="Say what would be removed; remove nothing."),
) -> None:
    """Remove run folders that will not be used, and print the space freed.

    A removed sweep point goes back to pending in runs.csv, so running the sweep again trains it.

    Example: dlcli clean results --status interrupted,failed --dry-run
    """
    from dlcli.analysis.manage import clean_runs, parse_statuses
    from dlcli.report.manage import print_clean

    print_clean(clean_runs(root, parse_statuses(status), dry_run))

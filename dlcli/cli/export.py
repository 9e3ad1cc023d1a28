"""The export command: runs into TensorBoard event folders or an MLflow tracking store."""
from __future__ import annotations

from pathlib import Path
from typing import List, Optional, Tuple

import typer

from dlcli.cli.app import app, user_errors_exit_2
from dlcli.errors import UserError

TARGETS = ("tensorboard", "mlflow")


@app.command()
@user_errors_exit_2
def export(
    paths: List[Path] = typer.Argument(..., help="Runs, sweep directories or results roots.", show_default=False),
    to: Tuple[str, str] = typer.Option(..., "--to", metavar="TARGET WHERE", help="tensorboard DIR (an event folder per run) or mlflow "
                                       "URI (a tracking store: sqlite:///mlflow.db, http://host:5000).",
                                       show_default=False),
    where: Optional[List[str]] = typer.Option(None, "--where", help="Export only runs where COLUMN OP VALUE "
                                              "holds, as in dlcli compare: status==completed (repeatable).",
                                              show_default=False),
) -> None:
    """Export runs to TensorBoard or MLflow; exporting again replaces, never duplicates.

    dlcli's files stay the source of truth: nothing writes to TensorBoard or MLflow while training. Then open `tensorboard --logdir DIR` or `mlflow ui --backend-store-uri URI`. Needs dlcli's tensorboard or mlflow extra (see docs/report.md).

    Example: dlcli export results/batch_lr_grid --to mlflow sqlite:///mlflow.db
    """
    from dlcli.export.runs import select_runs
    from rich.markup import escape

    from dlcli.report.console import console

    target, destination = to
    if target not in TARGETS:
        raise UserError(f"--to {target}: unknown target (allowed: {', '.join(TARGETS)})")
    frame = select_runs(paths, list(where or []))
    if target == "tensorboard":
        from dlcli.export.tensorboard import export_tensorboard

        folders = export_tensorboard(frame, Path(destination))
        console.print(escape(f"wrote {len(folders)} runs to {destination}: tensorboard --logdir {destination}"),
                      soft_wrap=True)
    else:
        from dlcli.export.mlflow import export_mlflow

        result = export_mlflow(frame, destination)
        console.print(escape(f"{len(result.created)} runs exported, {len(result.replaced)} replaced, "
                             f"{len(result.unchanged)} unchanged, in {len(result.experiments)} experiments "
                             f"({', '.join(result.experiments)}): mlflow ui --backend-store-uri {destination}"),
                      soft_wrap=True)

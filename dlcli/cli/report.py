"""The report command: one self-contained HTML page of runs and sweeps, to open in any browser."""
from __future__ import annotations

from pathlib import Path
from typing import List, Optional

import typer

from dlcli.cli.app import app, user_errors_exit_2
from dlcli.errors import UserError


@app.command()
@user_errors_exit_2
def report(
    paths: List[Path] = typer.Argument(..., help="Runs, sweep directories or results roots (lr-find runs and "
                                       "bias_variance.csv files below them are shown too).", show_default=False),
    out: Path = typer.Option(Path("report.html"), "-o", "--out", help="The HTML file to write."),
    where: Optional[List[str]] = typer.Option(None, "--where", help="Keep runs where COLUMN OP VALUE holds, as "
                                              "in dlcli compare: optim.lr>=0.1 (repeatable).", show_default=False),
    by: Optional[str] = typer.Option(None, "--by", help="Group runs by these keys, comma-separated (mean ± std "
                                     "over the rest; default: seed replicates).", show_default=False),
) -> None:
    """Write an HTML report: a sortable run table and interactive charts, one file that opens offline.

    Charts: errors against a swept key (seed bands, Bayes error, interpolation threshold), the heatmap of two swept keys, learning curves, per-update losses, parallel coordinates, bias-variance and lr-find curves, as the runs have them; for a search folder, its trials (the chosen one starred) and the best so far, read on validation. Needs plotly (dlcli's report extra).

    Example: dlcli report results/batch_lr_grid -o grid.html
    """
    from dlcli.analysis.report_data import report_data
    from dlcli.report.html import require_plotly, write_report
    from dlcli.report.compare import print_wrote

    require_plotly()
    if out.is_dir() or not out.parent.is_dir():
        raise UserError(f"--out {out}: expected a file in an existing folder")
    if out.suffix.lower() not in (".html", ".htm"):
        raise UserError(f"--out {out}: the report is one HTML page; name it .html")
    keys = None if by is None else [key.strip() for key in by.split(",") if key.strip()]
    write_report(report_data(paths, list(where or []), keys), out, [str(path) for path in paths])
    print_wrote(out)

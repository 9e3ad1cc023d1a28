"""The command line: a thin layer over the library. Each command parses its arguments, makes one
library call, and prints the result with `dlcli.report`.

Each command group lives in its own module; importing them registers their commands on the app, in
this order in --help. torch is imported inside the commands that train, so `dlcli --help` and
`dlcli compare` stay fast.
"""
from __future__ import annotations

from dlcli.cli import runs, sweeps, compare, bias_variance, loss, manage, report, export  # noqa: F401, I001
from dlcli.cli.app import app

__all__ = ["app", "main"]


def main() -> None:
    app()

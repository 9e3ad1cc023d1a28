"""The command line: a thin layer that parses arguments, calls the API and prints with `render`.

Each command lives in its own module; importing them registers them on the app. torch is imported
inside the commands that train, so `dlcli --help` and `dlcli compare` stay fast.
"""
from __future__ import annotations

# Importing a command module registers its commands, in this order in --help.
from dlcli import cli_run, cli_sweep, cli_compare, cli_bias_variance, cli_loss  # noqa: F401, I001
from dlcli.cli_common import app

__all__ = ["app", "main"]


def main() -> None:
    app()

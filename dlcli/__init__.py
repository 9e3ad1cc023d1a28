"""dlcli: train, sweep and compare small PyTorch models from YAML.

The Python API mirrors the commands: `load_experiment` reads a config, `train` runs it,
`evaluate_run` re-scores a finished run. Heavy modules (torch) load only when used.
"""
from __future__ import annotations

__version__ = "0.1.0"

__all__ = ["load_experiment", "train", "evaluate_run", "UserError", "__version__"]


def __getattr__(name: str):
    if name == "load_experiment":
        from dlcli.config import load_experiment

        return load_experiment
    if name == "train":
        from dlcli.train import train

        return train
    if name == "evaluate_run":
        from dlcli.evaluate import evaluate_run

        return evaluate_run
    if name == "UserError":
        from dlcli.errors import UserError

        return UserError
    raise AttributeError(name)

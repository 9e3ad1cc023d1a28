"""dlcli: train, sweep and compare small PyTorch models from YAML.

The Python API mirrors the commands; each name below is what a command calls. Heavy modules (torch)
load only when a name that needs them is first used, so `import dlcli` stays fast.
"""
from __future__ import annotations

import importlib

__version__ = "0.1.0"

# name -> the module that defines it
_API = {
    "load_experiment": "dlcli.config.load",  # a YAML file plus overrides -> Experiment
    "experiment_from_dict": "dlcli.config.load",  # a mapping plus overrides -> Experiment
    "Experiment": "dlcli.config.schema",
    "load_sweep": "dlcli.config.sweep",  # a config's sweep section plus --grid/--zip/--seeds -> Sweep
    "train": "dlcli.engine.loop",  # Experiment -> RunResult (`dlcli train`)
    "resume": "dlcli.engine.loop",  # a run folder -> RunResult, continued from its checkpoint (`dlcli train --resume`)
    "run_sweep": "dlcli.sweep.runner",  # Sweep -> SweepResult (`dlcli sweep`)
    "estimate_sweep": "dlcli.sweep.runner",  # Sweep -> seconds (`dlcli sweep --dry-run`)
    "load_search": "dlcli.config.search",  # a config's sweep section plus --grid and search options -> Search
    "run_search": "dlcli.sweep.search",  # Search -> SearchResult (`dlcli sweep --method random|qmc|tpe`)
    "load_study": "dlcli.sweep.study",  # the runs of a bias-variance study
    "run_study": "dlcli.analysis.bias_variance",  # Study -> StudyResult (`dlcli bias-variance`)
    "evaluate_run": "dlcli.analysis.evaluate",  # a run folder -> evaluation.json's content (`dlcli evaluate`)
    "lr_find": "dlcli.analysis.lr_find",  # Experiment -> LrFindResult (`dlcli lr-find`)
    "load_runs": "dlcli.analysis.compare",  # run folders -> a DataFrame, one row per run (`dlcli compare`)
    "tag_runs": "dlcli.components.tags",  # tags and a note in each run's tags.json (`dlcli tag`)
    "read_metrics": "dlcli.layout",
    "read_summary": "dlcli.layout",
    "Status": "dlcli.layout",
    "UserError": "dlcli.errors",
}

__all__ = [*_API, "__version__"]


def __getattr__(name: str):
    if name not in _API:
        raise AttributeError(f"module 'dlcli' has no attribute {name!r}")
    return getattr(importlib.import_module(_API[name]), name)


def __dir__() -> list[str]:
    return sorted(__all__)

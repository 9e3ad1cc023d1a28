"""Which sampled keys a search's validation metric depends on: fANOVA (Hutter, Hoos and Leyton-Brown,
ICML 2014; Optuna's FanovaImportanceEvaluator) fits a random forest to the trials and splits the
metric's variance into the parts each key explains on its own (its main effect); the shares here are
those parts normalized to sum to 1 (what the keys explain together, in interactions, is left out).

Random search pays off when few of many keys matter (Bergstra and Bengio, JMLR 2012); this says which
did in a search. The trials are compared at one epoch, the latest at which every trial that trained
was measured: with successive halving the first rung (a pruned trial's later epochs do not exist), else
the last. Optuna is imported only here, when asked.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from dlcli import layout
from dlcli.analysis.compare import read_curves
from dlcli.analysis.search import search_table
from dlcli.errors import UserError
from dlcli.layout import SUCCEEDED, Status

MIN_TRIALS = 8  # fewer, and a forest over five keys says little


@dataclass
class Importance:
    metric: str
    epoch: int  # the epoch the trials were compared at
    trials: int
    shares: dict[str, float]  # key → its share of the metric's variance, largest first


def key_importance(path: str | Path) -> Importance:
    """Each sampled key's importance for the search's metric (`Importance`), over its trials at the
    latest epoch all of them were measured at; a UserError when fewer than MIN_TRIALS were."""
    from dlcli.sweep.trials import optuna_module

    path = Path(path)
    trials, _, settings = search_table(path)
    metric = settings.get("metric", "val_error")
    curves = _trial_curves(path, trials, metric)
    common = set.intersection(*(set(curve) for curve in curves.values())) - {0} if curves else set()
    if len(curves) < MIN_TRIALS or not common:
        raise UserError(f"--importance: {len(curves)} trials of {path} were measured at a common epoch; "
                        f"weighing the keys needs at least {MIN_TRIALS}")
    epoch = max(common)
    optuna = optuna_module()
    journal = optuna.storages.journal.JournalFileBackend(str(path / layout.SEARCH_JOURNAL))
    asked = optuna.load_study(study_name="search", storage=optuna.storages.JournalStorage(journal))
    study = optuna.create_study()  # in memory: the same points, each with its value at `epoch`
    for trial in asked.get_trials(deepcopy=False):
        if trial.number in curves:
            study.add_trial(optuna.trial.create_trial(params=trial.params, distributions=trial.distributions,
                                                      value=curves[trial.number][epoch]))
    evaluator = optuna.importance.FanovaImportanceEvaluator(seed=0)
    shares = optuna.importance.get_param_importances(study, evaluator=evaluator)
    return Importance(metric, epoch, len(study.trials), {key: float(share) for key, share in shares.items()})


def _trial_curves(path: Path, trials: pd.DataFrame, metric: str) -> dict[int, dict[int, float]]:
    """Each measured trial's finite `metric` by epoch (`trials`: the search's runs.csv), from its run's
    metrics.csv (a configuration sampled twice: both its trials)."""
    measured = trials[trials["status"].isin([*SUCCEEDED, Status.PRUNED])]
    runs = measured.drop_duplicates("run_id")
    curves = read_curves(runs.assign(path=[str(path / run_id) for run_id in runs["run_id"]]))
    by_run = {run_id: {int(epoch): float(value) for epoch, value in zip(rows["epoch"], rows[metric])
                       if math.isfinite(value)}
              for run_id, rows in (curves.groupby("run_id") if not curves.empty else [])}
    return {int(trial): by_run[run_id] for trial, run_id in zip(measured["trial"], measured["run_id"])
            if run_id in by_run}

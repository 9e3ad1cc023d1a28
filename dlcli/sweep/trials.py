"""A search's trials in Optuna: the study in the sweep folder's journal file, the samplers, telling
outcomes, successive halving's rungs, and choosing the best trial on the validation metric.

Optuna is imported here only, when a search runs.
"""
from __future__ import annotations

import math
import warnings
from pathlib import Path
from typing import Any

from dlcli import layout
from dlcli.config.search import SearchSettings
from dlcli.config.search_space import Choice, Distribution, Uniform
from dlcli.errors import UserError
from dlcli.layout import SUCCEEDED, Status
from dlcli.sweep.journal import Journal


def optuna_module():
    """Optuna, quiet; a UserError that says how to install it when it is missing."""
    try:
        import optuna
    except ImportError:
        raise UserError("a search (--method random, qmc or tpe) needs Optuna: pip install 'dlcli[search]'") from None

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    return optuna


def open_study(sweep_dir: Path) -> tuple[Any, Journal]:
    """The search's study, created in (or read back from) the folder's journal: no database server, and
    a search killed mid-way continues from what the journal holds; and the journal, to `flush`."""
    optuna = optuna_module()
    journal = Journal(sweep_dir / layout.SEARCH_JOURNAL)
    study = optuna.create_study(storage=optuna.storages.JournalStorage(journal), study_name="search",
                                direction="minimize", load_if_exists=True)
    journal.flush()
    return study, journal


def sampler(settings: SearchSettings, asked: int):
    """The sampler for the next batch. Random and TPE samplers are seeded from the seed and the number
    of trials asked so far, so a search continued after a kill asks what an uninterrupted one would;
    the Sobol sequence keeps its position in the study itself."""
    optuna = optuna_module()
    seed = (settings.seed * 1_000_003 + asked) % 2**32
    if settings.method == "random":
        return optuna.samplers.RandomSampler(seed=seed)
    if settings.method == "tpe":  # constant liar: trials of a batch spread instead of piling up
        return optuna.samplers.TPESampler(seed=seed, constant_liar=True)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # QMCSampler is "experimental"
        return optuna.samplers.QMCSampler(seed=settings.seed % 2**32, scramble=True)  # its seeds: 0 to 2³² − 1


def distributions(space: dict[str, Distribution]) -> dict[str, Any]:
    optuna = optuna_module()
    result = {}
    for key, distribution in space.items():
        if isinstance(distribution, Choice):
            result[key] = optuna.distributions.CategoricalDistribution(distribution.encoded())
        elif isinstance(distribution, Uniform) and distribution.integer:
            result[key] = optuna.distributions.IntDistribution(distribution.low, distribution.high,
                                                               log=distribution.log)
        else:
            result[key] = optuna.distributions.FloatDistribution(distribution.low, distribution.high,
                                                                 log=distribution.log)
    return result


def ask(study, settings: SearchSettings, space: dict[str, Distribution], count: int) -> list:
    """`count` new trials, sampled together (TPE sees the batch's earlier trials as running)."""
    study.sampler = sampler(settings, len(study.get_trials(deepcopy=False)))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return [study.ask(distributions(space)) for _ in range(count)]


def running(study) -> list:
    """Trials asked but never told: a killed search's unfinished batch, continued first."""
    return [trial for trial in study.get_trials(deepcopy=False) if trial.state.name == "RUNNING"]


STATUS_ATTR, MESSAGE_ATTR, EPOCHS_ATTR = "dlcli.status", "dlcli.message", "dlcli.epochs_run"  # in the journal


def tell(study, numbers: list[int], summary: dict[str, Any], metric: str) -> None:
    """A run's outcome for its trials: its validation metric; pruned; or failed (diverged or broken).
    An interrupted run is not told: the trial continues when the search runs again."""
    optuna = optuna_module()
    status, value = summary.get("status"), summary.get(metric)
    if status == Status.INTERRUPTED:
        return
    trials = {trial.number: trial for trial in study.get_trials(deepcopy=False)}
    for number in numbers:
        if trials[number].state != optuna.trial.TrialState.RUNNING:
            continue
        # What Optuna's states do not say (diverged or failed, why, how many epochs), kept in the journal
        # for a row whose run folder is removed later (dlcli clean).
        kept = {STATUS_ATTR: str(status), MESSAGE_ATTR: str(summary.get("message") or ""),
                EPOCHS_ATTR: summary.get("epochs_run")}
        for key, attribute in kept.items():
            study._storage.set_trial_user_attr(trials[number]._trial_id, key, attribute)
        if status in SUCCEEDED and value is not None and math.isfinite(value):
            study.tell(number, value)
        elif status == Status.PRUNED:
            study.tell(number, state=optuna.trial.TrialState.PRUNED)
        else:  # Optuna's FAIL: dlcli's diverged or failed
            study.tell(number, state=optuna.trial.TrialState.FAIL)


class Rungs:
    """Successive halving: at each rung epoch the trials training report their validation metric; a
    trial goes on only if it ranks in the best max(1, n // eta) of the n trials of the search that have
    reached that rung. The trials of a batch all report before any is decided (dlcli.sweep.lockstep);
    those of earlier batches count too, as in ASHA. Called after every epoch."""

    def __init__(self, study, journal: Journal, settings: SearchSettings, epochs: int, trials_of: dict[Path, list[int]]):
        self.study, self.journal, self.settings, self.trials_of = study, journal, settings, trials_of
        self.rungs = set(settings.rungs(epochs))
        # A killed search's trials have no optuna.Trial to report through: the storage takes their ids.
        self.ids = {trial.number: trial._trial_id for trial in study.get_trials(deepcopy=False)}

    def __call__(self, epoch: int, rows: dict[Path, dict[str, float]]) -> dict[Path, str]:
        if epoch not in self.rungs:
            return {}
        metric = self.settings.metric
        reported = {trial.number: dict(trial.intermediate_values) for trial in self.study.get_trials(deepcopy=False)}
        for run_dir, row in rows.items():
            for number in self.trials_of[run_dir]:
                if row.get("epoch") == epoch and epoch not in reported.get(number, {}):
                    self.study._storage.set_trial_intermediate_value(self.ids[number], epoch, row[metric])
                    reported.setdefault(number, {})[epoch] = row[metric]
        self.journal.flush()
        pool = sorted((values[epoch], number) for number, values in reported.items() if epoch in values)
        going = {number for _, number in pool[:max(1, len(pool) // self.settings.eta)]}
        pruned = {}
        for run_dir, row in rows.items():
            first = self.trials_of[run_dir][0]
            if row.get("epoch") == epoch and first not in going:
                rank = [number for _, number in pool].index(first) + 1
                pruned[run_dir] = (f"pruned at epoch {epoch}: {metric} {row[metric]:.4g} ranks {rank} of "
                                   f"{len(pool)} trials at this rung ({len(going)} go on)")
        return pruned


def best_trial(rows: list[dict[str, Any]], metric: str) -> dict[str, Any] | None:
    """The chosen trial: the lowest validation metric among those trained to the end (the earlier
    trial on a tie). Only `metric` is read: the test split never takes part in the choice."""
    candidates = [row for row in rows if row.get("status") in SUCCEEDED and _finite(row.get(metric))]
    return min(candidates, key=lambda row: (float(row[metric]), int(row["trial"]))) if candidates else None


def _finite(value: Any) -> bool:
    try:
        return math.isfinite(float(value))
    except (TypeError, ValueError):
        return False

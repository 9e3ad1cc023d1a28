"""Running a search: trials sampled by Optuna (random, quasi-random Sobol, TPE), asked in batches.
Each trial is an ordinary run, named by its config hash; the trials of a batch that share a shape
train as one stacked model (dlcli.engine.grouping), and with successive halving the worst leave the
stack at each rung, as `pruned` (dlcli.sweep.trials.Rungs through the training loop's `rung` hook).

The study lives in the sweep folder's journal (search.journal). A search killed and run again first
continues the trials it had asked (from their checkpoints), then asks only for the rest; finished
trials are never trained again. Trials are chosen on the validation metric; each one's test error is
in its row, for the chosen trial to be reported once, at the end.
"""
from __future__ import annotations

from contextlib import nullcontext
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable

import yaml

from dlcli import layout
from dlcli.components.checkpoints import checkpoint_epoch
from dlcli.components.prepare import Prepared, prepare_all
from dlcli.components.threads import choose_threads, threads_for
from dlcli.config.flat import config_hash
from dlcli.config.search import Search, SearchSettings, halving_without_rungs
from dlcli.engine.grouping import MAX_STACK, plan_units
from dlcli.engine.loop import unit_training
from dlcli.errors import UserError
from dlcli.layout import FINISHED, Status
from dlcli.sweep.backends import clear_run_dirs
from dlcli.sweep.lockstep import LocalTraining, Stepped, train_in_lockstep
from dlcli.sweep.runner import sweep_lock
from dlcli.sweep.journal import Journal
from dlcli.sweep.search_folder import JOURNAL_STATUS, check_same_search, trial_rows, write_runs_csv
from dlcli.sweep.trials import Rungs, ask, best_trial, open_study, running, tell
from dlcli.sweep.unit_workers import Rebalance, WorkerPool, split_for, start_units

if TYPE_CHECKING:
    from dlcli.sweep.ray_units import RayPool

Hook = Callable[[Any], None]
# TPE learns only from trials told before each batch: asked all at once, its trials are its random start.
TPE_BATCH = 16  # docs/benchmarks.md (s4): on search_mlp, the lowest validation error of the sizes measured


@dataclass
class SearchResult:
    sweep_dir: Path
    rows: list[dict[str, Any]]  # runs.csv's rows, one per trial, in trial order
    skipped: int  # trials an earlier invocation finished
    metric: str  # what the trials were chosen on
    best: dict[str, Any] | None  # the chosen trial's row (None when no trial completed)
    epochs: int  # epochs trained by all the trials' runs together
    full_epochs: int  # what they would have trained without pruning
    keys: list[str] = field(default_factory=list)  # the keys sampled (the space's)

    @property
    def failed(self) -> list[dict[str, Any]]:
        return [row for row in self.rows if row["status"] not in FINISHED]


def run_search(search: Search, out_root: str | Path, on_result: Hook | None = None, on_skipped: Hook | None = None,
               on_note: Hook | None = None, vectorize: bool = True, force: bool = False,
               tags: dict[str, str] | None = None, workers: int = 1, backend: str = "local",
               address: str | None = None, gpus_per_run: float | None = None) -> SearchResult:
    """Run (or continue) a search until it holds `trials` trials; returns one row per trial.

    `on_skipped` hears how many trials an earlier invocation finished, `on_note` what was stacked,
    `on_result` each new row. `force` and `tags` as for run_sweep. With `workers` > 1 each batch's
    stacks train in that many worker processes at once (dlcli.sweep.unit_workers); with `backend`
    ray in Ray actors (dlcli.sweep.ray_units; `workers` of them, else one per CPU of the cluster)."""
    sweep_dir = Path(out_root) / search.probes[0].name
    settings = search.settings
    if note := halving_without_rungs(search):
        (on_note or (lambda text: None))(note)
    with sweep_lock(sweep_dir), _pool(search, workers, backend, address, gpus_per_run, on_note) as pool:
        check_same_search(sweep_dir, search)
        study, journal = open_study(sweep_dir)
        layout.atomic_write_text(sweep_dir / layout.SWEEP_SPEC, yaml.safe_dump(search.spec(), sort_keys=False))
        rows = trial_rows(study, search, sweep_dir)
        write_runs_csv(sweep_dir, rows, search)
        # Told to the journal before: trials whose runs finished but were not told (killed in between) are
        # told, and announced, with their batch.
        skipped = sum(trial.state.name in JOURNAL_STATUS for trial in study.get_trials(deepcopy=False))
        (on_skipped or (lambda count: None))(skipped)
        try:
            while True:
                batch = running(study)  # a killed search's batch first
                if not batch:
                    size = min(batch_size(settings), settings.trials - len(rows))
                    batch = ask(study, settings, search.space, size)
                    journal.flush()
                    write_runs_csv(sweep_dir, trial_rows(study, search, sweep_dir), search)  # pending, until trained
                if not batch:
                    break
                interrupted = _run_batch(study, journal, search, sweep_dir, batch, on_result, on_note, vectorize,
                                         force, tags, pool)
                rows = trial_rows(study, search, sweep_dir)
                write_runs_csv(sweep_dir, rows, search)
                if interrupted:
                    raise KeyboardInterrupt  # the runs in flight ended as interrupted: the search stops too
        finally:
            journal.flush()
    epochs = _epochs(rows)
    full = {row["run_id"]: row.get("train.epochs", search.probes[0].train.epochs) for row in rows}
    return SearchResult(sweep_dir, rows, skipped, settings.metric, best_trial(rows, settings.metric), epochs,
                        int(sum(full.values())), list(search.space))


def check_probes(search: Search, force: bool = False) -> None:
    """The search's probe points (every bound and choice) prepared as trials are, before anything is
    written: what only the data or the device can tell (a shift longer than the inputs, a model too large
    for the memory) is refused then, not after the folder holds a search that cannot go on."""
    try:
        prepare_all(search.probes, search.config_path, force, search.overrides)
    except UserError as error:
        raise UserError([line.replace("point", "probe point") for line in error.problems]) from None


def _pool(search: Search, workers: int, backend: str, address: str | None, gpus: float | None,
          on_note: Hook | None):
    """Where the stacks train: in this process (no pool), in local worker processes, or in Ray actors."""
    threads = search.probes[0].train.threads
    if backend == "ray":
        from dlcli.sweep.ray_units import RayPool

        return RayPool(workers if workers > 1 else None, threads if isinstance(threads, int) else 1, on_note,
                       address, gpus)
    return WorkerPool(workers, choose_threads(threads, workers), on_note) if workers > 1 else nullcontext()


def batch_size(settings: SearchSettings) -> int:
    """Trials asked at once: `--batch`, else a full stack (TPE: TPE_BATCH)."""
    return settings.batch or (TPE_BATCH if settings.method == "tpe" else MAX_STACK)


def _run_batch(study, journal: Journal, search: Search, sweep_dir: Path, batch: list, on_result: Hook | None,
               on_note: Hook | None, vectorize: bool, force: bool, tags: dict[str, str] | None,
               pool: WorkerPool | RayPool | None) -> bool:
    """Train a batch's trials (a configuration sampled twice trains once); True when interrupted."""
    trials_of: dict[str, list[int]] = {}
    experiments = {}
    for trial in batch:
        experiment = search.experiment(search.point(trial.params))
        run_id = config_hash(experiment)
        trials_of.setdefault(run_id, []).append(trial.number)
        experiments[run_id] = experiment
    _tell_finished(study, journal, search, sweep_dir, trials_of, on_result)
    if not trials_of:  # every trial repeats a configuration trained before
        return False
    prepared = _prepared_trials(study, journal, search, sweep_dir, trials_of, experiments, force, on_result)
    if not prepared:
        return False
    run_ids = list(prepared)
    prepared = list(prepared.values())
    starts = [checkpoint_epoch(sweep_dir / run_id) for run_id in run_ids]
    units, notes = plan_units(prepared, vectorize, starts)
    if pool is not None:
        units = split_for(units, pool.workers)
        notes.append(f"{len(units)} units on {pool.workers} {pool.kind}")
    for note in notes:
        (on_note or (lambda text: None))(note)
    rung = Rungs(study, journal, search.settings, search.probes[0].train.epochs,
                 {sweep_dir / run_id: numbers for run_id, numbers in trials_of.items()})
    run_dirs = [[sweep_dir / run_ids[i] for i in unit] for unit in units]
    units_of = [[prepared[i] for i in unit] for unit in units]
    resumed = [starts[unit[0]] is not None for unit in units]
    trainings = _trainings(units_of, run_dirs, resumed, pool, on_note, force, tags)

    def finished(summaries: dict[Path, dict[str, Any]]) -> None:
        numbers = set()
        for run_dir, summary in summaries.items():
            tell(study, trials_of[run_dir.name], summary, search.settings.metric)
            numbers |= set(trials_of[run_dir.name])
        journal.flush()
        rows = trial_rows(study, search, sweep_dir)
        write_runs_csv(sweep_dir, rows, search)  # as units finish, as a sweep's
        _announce(rows, numbers, on_result)

    regroup = None if pool is None else Rebalance(pool, {sweep_dir / run_id: point for run_id, point in
                                                         zip(run_ids, prepared)}, vectorize, force, tags)
    with threads_for(prepared[0].experiment.train.threads):
        return train_in_lockstep(trainings, run_dirs, rung, finished, regroup)


def _prepared_trials(study, journal: Journal, search: Search, sweep_dir: Path, trials_of: dict[str, list[int]],
                     experiments: dict, force: bool, on_result: Hook | None) -> dict[str, Prepared]:
    """The batch's runs prepared, by run id. A sampled point that the data or the device rule out
    (between the bounds, where the probes did not look) fails its trials with the reason, and the others
    go on; taken out of `trials_of`."""
    try:
        return dict(zip(trials_of, prepare_all([experiments[run_id] for run_id in trials_of], search.config_path,
                                               force, search.overrides)))
    except UserError:
        pass
    prepared, failed = {}, []
    for run_id in list(trials_of):
        try:
            prepared[run_id] = prepare_all([experiments[run_id]], search.config_path, force, search.overrides)[0]
        except UserError as error:
            message = "; ".join(line.removesuffix(" (every point)") for line in error.problems)
            tell(study, trials_of[run_id], {"status": Status.FAILED, "message": message}, search.settings.metric)
            failed += trials_of.pop(run_id)
    journal.flush()
    _announce(trial_rows(study, search, sweep_dir), set(failed), on_result)
    return prepared


def _tell_finished(study, journal: Journal, search: Search, sweep_dir: Path, trials_of: dict[str, list[int]],
                   on_result: Hook | None) -> None:
    """Tell the trials whose runs finished already (before a kill, or as an earlier trial's twin), and
    take them out of `trials_of`."""
    known = []
    for run_id, numbers in list(trials_of.items()):
        summary = layout.finished_summary(sweep_dir / run_id)
        if summary is not None:
            tell(study, numbers, summary, search.settings.metric)
            known += numbers
            del trials_of[run_id]
    journal.flush()
    if known:
        _announce(trial_rows(study, search, sweep_dir), set(known), on_result)


def _trainings(units: list[list[Prepared]], run_dirs: list[list[Path]], resumed: list[bool],
               pool: WorkerPool | RayPool | None, on_note: Hook | None, force: bool,
               tags: dict[str, str] | None) -> list[Stepped]:
    """Each unit ready to step: in this process, or started in a worker (which builds its models there
    from their configs and the data sent to it)."""
    if pool is not None:
        return start_units(pool, units, run_dirs, resumed, force, tags)
    trainings = []
    for unit, dirs, resume in zip(units, run_dirs, resumed):
        if not resume:
            clear_run_dirs(dirs)
        trainings.append(LocalTraining(unit_training(unit, dirs, resume=resume, on_note=on_note, tags=tags)))
    return trainings


def _announce(rows: list[dict[str, Any]], numbers: set[int], on_result: Hook | None) -> None:
    """Each of these trials' rows to `on_result` (a configuration sampled twice: a row per trial)."""
    for row in rows:
        if row["trial"] in numbers:
            (on_result or (lambda row: None))(row)


def _epochs(rows: list[dict[str, Any]]) -> int:
    """Epochs trained, each run counted once (a configuration sampled twice trained once)."""
    runs = {row["run_id"]: row.get("epochs_run") or 0 for row in rows}
    return int(sum(runs.values()))

"""A search folder's files as the search's process reads and writes them: runs.csv's rows, one per trial
(its run's results, or the journal's outcome when its folder is gone), and the check that a folder
continues only the search it holds."""
from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from dlcli import layout
from dlcli.config.flat import config_hash
from dlcli.config.search import Search
from dlcli.errors import UserError
from dlcli.layout import Status
from dlcli.sweep.trials import EPOCHS_ATTR, MESSAGE_ATTR, STATUS_ATTR

SPEC_NAMES = {"base": "the config's values (its file and --set)"}  # sweep.yaml's keys, as a refusal names them
JOURNAL_STATUS = {"COMPLETE": Status.COMPLETED, "PRUNED": Status.PRUNED, "FAIL": Status.FAILED}  # Optuna's states


def trial_rows(study, search: Search, sweep_dir: Path) -> list[dict[str, Any]]:
    """runs.csv's rows: each trial with its values and its run's results (pending until it finishes, or
    interrupted)."""
    rows = []
    for trial in study.get_trials(deepcopy=False):
        point = search.point(trial.params)
        experiment = search.experiment(point)
        run_id = config_hash(experiment)
        row = {"trial": trial.number, "run_id": run_id, "seed": experiment.seed, **point, "status": Status.PENDING}
        summary = layout.finished_summary(sweep_dir / run_id) or _interrupted(sweep_dir / run_id)
        if summary is None and trial.state.name in JOURNAL_STATUS:  # failed, or its folder removed since
            summary = _summary(sweep_dir / run_id) or _journal_outcome(trial, search.settings.metric)
        if summary:
            row |= {"status": summary["status"], **{key: summary.get(key) for key in
                                                      layout.SEARCH_RESULT_COLUMNS + layout.RUN_RESULT_COLUMNS}}
        rows.append(row)
    return rows


def _journal_outcome(trial, metric: str) -> dict[str, Any]:
    """A trial's row from the journal alone (its folder removed, by `dlcli clean --status pruned` say): its
    status, and its metric at the last epoch reported (where a pruned trial stopped)."""
    last = max(trial.intermediate_values, default=None)
    value = trial.value if trial.value is not None or last is None else trial.intermediate_values[last]
    attributes = trial.user_attrs  # kept when the trial was told (a journal from before: its states alone)
    return {"status": attributes.get(STATUS_ATTR) or JOURNAL_STATUS[trial.state.name], metric: value,
            "epochs_run": attributes.get(EPOCHS_ATTR, last),
            "message": attributes.get(MESSAGE_ATTR) or "its run folder was removed; the outcome is the journal's"}


def _interrupted(run_dir: Path) -> dict[str, Any] | None:
    """The summary of a run stopped by an interrupt (its trial continues when the search runs again)."""
    summary = _summary(run_dir)
    return summary if summary and summary.get("status") == Status.INTERRUPTED else None


def _summary(run_dir: Path) -> dict[str, Any] | None:
    try:
        return layout.read_summary(run_dir)
    except (OSError, ValueError):
        return None


def write_runs_csv(sweep_dir: Path, rows: list[dict[str, Any]], search: Search) -> None:
    columns = layout.runs_columns(list(search.space), search=True)
    layout.atomic_write_text(sweep_dir / layout.RUNS, layout.csv_text(rows, columns))


def check_same_search(sweep_dir: Path, search: Search) -> None:
    """A folder continues only the search it holds (more trials are fine: the search goes on). The space's
    axes in another order are another search: the sampler draws them in order."""
    spec_path = sweep_dir / layout.SWEEP_SPEC
    if not (sweep_dir / layout.SEARCH_JOURNAL).is_file():
        if (sweep_dir / layout.RUNS).is_file():
            raise UserError(f"{sweep_dir}: holds a grid sweep; give the search another --out or name")
        return
    if not spec_path.is_file():  # killed before it was written: the journal's search goes on
        return
    before = yaml.safe_load(spec_path.read_text(encoding="utf-8")) or {}
    now = search.spec()
    ignored = ("trials", "config", "overrides" if "base" in before else "base")  # a folder from before `base`
    changed = [SPEC_NAMES.get(key, key) for key in now if key not in ignored and _differs(before.get(key), now[key])]
    if changed:
        raise UserError(f"{sweep_dir}: holds another search ({', '.join(changed)} differ); continue it with the "
                        "same settings, or give this one another --out")


def _differs(before: Any, now: Any) -> bool:
    """Unequal, or the same mapping in another order (the space's axes)."""
    return before != now or (isinstance(now, dict) and list(before) != list(now))

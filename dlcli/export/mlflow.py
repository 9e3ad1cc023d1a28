"""`dlcli export --to mlflow URI`: one MLflow experiment per sweep (the folder the runs lie in), one
MLflow run per dlcli run with the flattened config as params, every per-epoch metric with its epoch as
the step, tags (status, run id, path, the run's own tags; a search trial's `dlcli.trial` and
`dlcli.chosen`) and the run folder's files as artifacts. A pruned trial ends FINISHED (its search's
decision), a diverged or failed run FAILED, an interrupted one KILLED.

A run already exported is found by the run folder it came from (its `dlcli.path` tag; or, for a folder
moved since, an export of the same `dlcli.run_id` whose folder is gone): left as it is when it has not
changed since (same status, epochs and start, and for a trial whether it is chosen), else replaced, so
exporting twice adds nothing, and the same sweep run under two --out roots is two sets of runs. Any tracking
URI works; a `sqlite:///PATH` store keeps its artifacts in an `mlartifacts` folder beside the file.
Then: `mlflow ui --backend-store-uri URI`.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import pandas as pd

from dlcli.errors import UserError
from dlcli.export.runs import epoch_scalars, experiment_name, run_params, search_tags
from dlcli.layout import SUCCEEDED, Status

RUN_ID_TAG = "dlcli.run_id"
PATH_TAG = "dlcli.path"  # the run folder exported, resolved: what says two exports are of the same run
VERSION_TAG = "dlcli.version"  # what the export saw: status, epochs, start; a change means export again
TERMINAL = {Status.DIVERGED: "FAILED", Status.FAILED: "FAILED", Status.INTERRUPTED: "KILLED",
            Status.PRUNED: "FINISHED"}  # a pruned trial ended as its search decided; its dlcli.status says so
BATCH = 500  # metrics per log_batch call (MLflow takes at most 1000 entities at once)


@dataclass
class MlflowExport:
    created: list[str] = field(default_factory=list)  # dlcli run ids exported for the first time
    replaced: list[str] = field(default_factory=list)  # changed since their last export
    unchanged: list[str] = field(default_factory=list)
    experiments: dict[str, str] = field(default_factory=dict)  # name -> MLflow experiment id


def export_mlflow(frame: pd.DataFrame, uri: str) -> MlflowExport:
    """Export every run of `frame` (compare.load_runs' rows) into the tracking store at `uri`."""
    try:
        from mlflow.exceptions import MlflowException
        from mlflow.tracking import MlflowClient
    except ImportError:
        raise UserError("exporting to MLflow needs mlflow: pip install 'dlcli[mlflow]'") from None
    for name in ("mlflow", "alembic"):
        logging.getLogger(name).setLevel(logging.WARNING)  # the store's migrations log every step
    try:
        return export_runs(MlflowClient(tracking_uri=uri), frame, uri)
    except MlflowException as error:  # an unknown scheme, an unreachable server: what was exported stays
        message = str(error.message).strip().splitlines()[0] if str(error.message).strip() else type(error).__name__
        raise UserError(f"--to mlflow {uri}: {message} (exporting again continues where this stopped)") from None


def export_runs(client: Any, frame: pd.DataFrame, uri: str) -> MlflowExport:
    """Each run of `frame` into the store behind `client`, one experiment per sweep."""
    result = MlflowExport()
    trials = search_tags(frame)
    for name, runs in frame.groupby(frame["path"].map(experiment_name), sort=False):
        experiment_id = experiment_for(client, name, uri)
        result.experiments[name] = experiment_id
        exported = exported_runs(client, experiment_id)
        for _, run in runs.iterrows():
            run_id = str(run["run_id"])
            extra = trials.get(run_id, {})
            version = version_of(run) + (" chosen" if extra.get("dlcli.chosen") == "true" else "")
            source = str(Path(run["path"]).resolve())
            previous = previous_export(exported, run_id, source)
            if previous is not None and previous.data.tags.get(VERSION_TAG) == version:
                if previous.data.tags.get(PATH_TAG) != source:  # the folder moved: the tag follows it
                    client.set_tag(previous.info.run_id, PATH_TAG, source)
                result.unchanged.append(run_id)
                continue
            if previous is not None:
                client.delete_run(previous.info.run_id)
            log_run(client, experiment_id, run, version, extra)
            (result.replaced if previous is not None else result.created).append(run_id)
    return result


def experiment_for(client: Any, name: str, uri: str) -> str:
    """The experiment named after the sweep, created on first use (a deleted one is restored)."""
    experiment = client.get_experiment_by_name(name)
    if experiment is None:
        return client.create_experiment(name, artifact_location=artifact_location(uri, name))
    if experiment.lifecycle_stage == "deleted":
        client.restore_experiment(experiment.experiment_id)
    return experiment.experiment_id


def artifact_location(uri: str, name: str) -> str | None:
    """For a sqlite:///PATH store, PATH's folder/mlartifacts/NAME; otherwise the server decides."""
    if not uri.startswith("sqlite:///"):
        return None
    return (Path(uri[len("sqlite:///"):]).resolve().parent / "mlartifacts" / name).as_uri()


def exported_runs(client: Any, experiment_id: str) -> list[Any]:
    """The experiment's live MLflow runs that dlcli exported."""
    found, token = [], None
    while True:
        page = client.search_runs([experiment_id], max_results=1000, page_token=token)
        found += [run for run in page if RUN_ID_TAG in run.data.tags]
        token = page.token
        if not token:
            return found


def previous_export(exported: list[Any], run_id: str, source: str) -> Any | None:
    """The export of this run folder, else of a folder with the same run id that no longer exists (moved
    here); taken out of `exported`, so that no other run claims it."""
    tags = [run.data.tags for run in exported]
    same = [i for i, tag in enumerate(tags) if tag.get(PATH_TAG) == source]
    moved = [i for i, tag in enumerate(tags) if tag[RUN_ID_TAG] == run_id and not Path(tag.get(PATH_TAG, "")).exists()]
    found = (same or moved or [None])[0]
    return None if found is None else exported.pop(found)


def version_of(run: pd.Series) -> str:
    return f"{run['status']} {run.get('epochs_run')} {run.get('started')}"


def log_run(client: Any, experiment_id: str, run: pd.Series, version: str, extra: dict[str, str]) -> None:
    """One MLflow run: params, per-epoch metrics, tags (and `extra`: a search trial's), the folder's
    files, and how it ended."""
    from mlflow.entities import Metric, Param

    start = _milliseconds(run.get("started"))
    tags = {RUN_ID_TAG: str(run["run_id"]), VERSION_TAG: version, "dlcli.status": str(run["status"]),
            PATH_TAG: str(Path(run["path"]).resolve()), **extra}
    tags |= {key: str(value) for key, value in run.items() if key.startswith("tag.") and value == value
             and value is not None}
    created = client.create_run(experiment_id, start_time=start, tags=tags, run_name=str(run["run_id"]))
    mlflow_id = created.info.run_id
    params = [Param(key, str(value)) for key, value in run_params(run).items()]
    for begin in range(0, len(params), 100):  # MLflow takes at most 100 params at once
        client.log_batch(mlflow_id, params=params[begin: begin + 100])
    metrics = [Metric(name, value, start or 0, epoch) for epoch, scalars in epoch_scalars(run["path"])
               for name, value in scalars.items()]
    for begin in range(0, len(metrics), BATCH):
        client.log_batch(mlflow_id, metrics=metrics[begin: begin + BATCH])
    client.log_artifacts(mlflow_id, str(run["path"]))
    if run["status"] in SUCCEEDED:
        client.set_terminated(mlflow_id, "FINISHED")
    elif run["status"] in TERMINAL:
        client.set_terminated(mlflow_id, TERMINAL[run["status"]])


def _milliseconds(started: Any) -> int | None:
    try:
        return int(datetime.fromisoformat(str(started)).timestamp() * 1000)
    except ValueError:
        return None

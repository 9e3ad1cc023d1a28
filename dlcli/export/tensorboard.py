"""`dlcli export --to tensorboard DIR`: one event folder per run, DIR/<sweep>/<run id>, with the
per-epoch scalars (train/test/val loss and error, lr, weight norm; the step is the epoch) and the
HParams plugin's session data: the keys that differ between the exported runs against the final
metrics (validation too, where measured: what a search chose on). Then: `tensorboard --logdir DIR`.

Each event folder names the run folder it came from (SOURCE, beside the events), and exporting again
rewrites that folder, so nothing is duplicated. Two run folders with the same sweep name and run id
(the same sweep run under two --out roots) get DIR/<sweep>/<run id>, <run id>-2, ...: one never
replaces the other.
"""
from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import pandas as pd

from dlcli.errors import UserError
from dlcli.export.runs import epoch_scalars, experiment_name, final_metrics, param_value, swept_keys

SOURCE = "dlcli-source.txt"  # in each event folder: the run folder it was exported from


def export_tensorboard(frame: pd.DataFrame, log_dir: str | Path) -> list[Path]:
    """Write every run of `frame` (compare.load_runs' rows) under `log_dir`; returns the event folders."""
    log_dir = Path(log_dir)
    if log_dir.exists() and not log_dir.is_dir():
        raise UserError(f"--to tensorboard {log_dir}: is a file, expected a folder")
    try:
        from torch.utils.tensorboard import SummaryWriter
        from torch.utils.tensorboard.summary import hparams
    except ImportError:
        raise UserError("exporting to TensorBoard needs tensorboard: pip install 'dlcli[tensorboard]'") from None
    try:
        log_dir.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise UserError(f"--to tensorboard {log_dir}: cannot create the folder ({error.strerror})") from None
    keys = swept_keys(frame) or [key for key in frame.columns if key == "seed"]
    domains = discrete_domains(frame, keys)
    metrics = final_metrics(frame)
    written = []
    for _, run in frame.iterrows():
        source = str(Path(run["path"]).resolve())
        folder = event_folder(log_dir / experiment_name(run["path"]), str(run["run_id"]), source)
        if folder.exists():
            shutil.rmtree(folder)  # the run's previous export: replaced, not added to
        writer = SummaryWriter(log_dir=str(folder))
        (folder / SOURCE).write_text(source + "\n", encoding="utf-8")
        try:
            for epoch, scalars in epoch_scalars(run["path"]):
                for name, value in scalars.items():
                    writer.add_scalar(name, value, epoch)
            values = {key: str(param_value(run[key])) if key in domains else param_value(run[key]) for key in keys}
            for summary in hparams(values, {name: 0.0 for name in metrics},
                                   {key: domain for key, domain in domains.items() if key in values}):
                writer.file_writer.add_summary(summary)
        finally:
            writer.close()
        written.append(folder)
    return written


def event_folder(sweep_folder: Path, run_id: str, source: str) -> Path:
    """The folder this run's events go to: the one exported from the same run folder before, else the
    first of <run id>, <run id>-2, ... whose run folder no longer exists (moved, or an export that did
    not name it), else the first free one."""
    names = [run_id, *(f"{run_id}-{k}" for k in range(2, 2 + len(list(sweep_folder.glob(f"{run_id}-*")))))]
    held = {name: _source_of(sweep_folder / name) for name in names if (sweep_folder / name).is_dir()}
    for name, named in held.items():
        if named == source:
            return sweep_folder / name
    for name, named in held.items():
        if named is None or not Path(named).exists():
            return sweep_folder / name
    return sweep_folder / next(name for name in [*names, f"{run_id}-{len(names) + 1}"] if name not in held)


def _source_of(folder: Path) -> str | None:
    path = folder / SOURCE
    return path.read_text(encoding="utf-8").strip() if path.is_file() else None


def discrete_domains(frame: pd.DataFrame, keys: list[str]) -> dict[str, list[Any]]:
    """The values (as text) a key takes among the runs when one is not a number (`full`, `relu`, a
    list): the HParams plugin lists them as choices."""
    domains = {}
    for key in keys:
        values = [param_value(value) for value in frame[key]]
        if any(isinstance(value, (str, bool)) for value in values):
            domains[key] = sorted({str(value) for value in values})
    return domains

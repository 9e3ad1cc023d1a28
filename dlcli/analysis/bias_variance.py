"""Bias and variance, measured: train a study's runs through the sweep (dlcli.sweep.study plans them),
evaluate every model of a grid point on the common test set, decompose (dlcli.analysis.decompositions)
and write bias_variance.csv.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import numpy as np
import torch
from torch import Tensor

from dlcli import layout
from dlcli.analysis.decompositions import decompose
from dlcli.analysis.evaluate import evaluation_data, load_model
from dlcli.components.data import load_dataset
from dlcli.components.datasets import Dataset
from dlcli.components.prepare import resolve_device
from dlcli.config.schema import Experiment
from dlcli.engine.batches import device_stats
from dlcli.engine.epoch import evaluate_outputs
from dlcli.layout import SUCCEEDED
from dlcli.sweep.runner import SweepResult, run_sweep
from dlcli.sweep.study import Study, grid_points

# The noise-free target where the generator has one (dlcli.components.datasets.sine: y = sin(π x₁) +
# N(0, noise²)), on the raw (not standardized) test inputs.
CLEAN_TARGETS: dict[str, Callable[[np.ndarray], np.ndarray]] = {"sine": lambda x: np.sin(np.pi * x[:, 0])}


@dataclass
class StudyResult:
    sweep: SweepResult
    rows: list[dict[str, Any]]  # one per grid point and decomposition
    incomplete: list[str]  # grid points left out because a run failed or diverged
    path: Path  # bias_variance.csv


def run_study(study: Study, out_root: str | Path, on_result: Callable | None = None,
              on_skipped: Callable | None = None, vectorize: bool = True,
              on_note: Callable | None = None, force: bool = False) -> StudyResult:
    """Train what is not finished on disk (the training sets and seeds of a grid point as one stacked
    model, with `vectorize`), decompose every grid point, write bias_variance.csv. `force`: train runs
    whose data or model look too large for the device's free memory."""
    result = run_sweep(study.sweep, out_root, on_result=on_result, on_skipped=on_skipped, vectorize=vectorize,
                       on_note=on_note, force=force)
    rows, incomplete = [], []
    for label, indices in grid_points(study).items():
        statuses = [result.rows[i]["status"] for i in indices]
        if any(status not in SUCCEEDED for status in statuses):
            bad = sum(status not in SUCCEEDED for status in statuses)
            incomplete.append(f"{label}: {bad} of {len(indices)} runs did not complete "
                              f"({', '.join(sorted(set(statuses) - SUCCEEDED))})")
            continue
        rows += decompose_point(study, indices, [result.sweep_dir / result.rows[i]["run_id"] for i in indices])
    path = result.sweep_dir / layout.BIAS_VARIANCE
    layout.atomic_write_text(path, layout.csv_text(rows, layout.bias_variance_columns(study.keys)))
    return StudyResult(result, rows, incomplete, path)


def decompose_point(study: Study, indices: list[int], run_dirs: list[Path]) -> list[dict[str, Any]]:
    """Evaluate the K × S models of one grid point on their common test set; one row per decomposition."""
    outputs: list[list[Tensor | None]] = [[None] * study.seeds for _ in range(study.trials)]
    first = study.sweep.experiments[indices[0]]
    test = None
    for index, run_dir in zip(indices, run_dirs):
        experiment = study.sweep.experiments[index]
        model_outputs, dataset = _test_outputs(experiment, run_dir)
        if test is None:
            test = dataset
        elif not np.array_equal(dataset.y_test, test.y_test):
            raise RuntimeError(f"{run_dir}: its test set differs from {run_dirs[0]}'s")  # data.seed is fixed
        seed_position = study.sweep.points[index].get("seed", 0)
        outputs[experiment.data.resample.index][seed_position] = model_outputs
    targets = torch.as_tensor(test.y_test)
    clean = _clean_targets(first) if test.task == "regression" else None
    decompositions = decompose(first.loss, torch.stack([torch.stack(row) for row in outputs]), targets, clean)
    point = study.sweep.points[indices[0]]
    rows = []
    for name, numbers in decompositions.items():
        bayes = test.bayes_error if name == ("mse" if test.task == "regression" else "zero_one") else None
        rows.append({**{key: point[key] for key in study.keys}, "decomposition": name, **numbers,
                     "bayes_error": bayes, "trials": study.trials, "seeds": study.seeds, "split": study.draw,
                     "n_test": len(targets)})
    return rows


def _test_outputs(experiment: Experiment, run_dir: Path) -> tuple[Tensor, Dataset]:
    """A run's raw outputs on the test set, its data rebuilt from the config as `dlcli evaluate` does."""
    dataset = evaluation_data(experiment, experiment, force=True)  # the data the run trained on: they fit
    model = load_model(run_dir, experiment, dataset, resolve_device(experiment.device))
    x = torch.as_tensor(dataset.x_test).to(next(model.parameters()).device)
    return evaluate_outputs(model, x, device_stats(dataset, x.device)).double().cpu(), dataset


def _clean_targets(experiment: Experiment) -> Tensor | None:
    target = CLEAN_TARGETS.get(experiment.data.name)
    if target is None:
        return None
    raw = load_dataset(experiment.data.model_copy(update={"standardize": False}), experiment.seed, force=True)
    return torch.as_tensor(target(raw.x_test.astype(np.float64)))

"""Bias and variance (lecture §3 and §5): many models, trained on many training sets, one test set.

For every grid point, K training sets × S seeds are trained as ordinary sweep runs (resumable:
finished runs are skipped). Every model is evaluated on the same test set (`data.seed` is held fixed;
`data.resample` draws the K training sets), and the expected test risk is decomposed:

- squared error (Yang et al., arXiv 2002.11328), of numbers (regression) or of vectors against one-hot
  labels (classifiers: the raw outputs when trained with mse, else the predicted distribution):
  variance with their finite-sample correction, noise where the generator's noise-free target is
  known, and bias² the remainder, so that risk = bias² + variance + noise exactly;
- cross-entropy (Yang et al.), exactly: with f̄ the normalized geometric mean of the models'
  distributions, bias² = E_x[−log f̄_y] and variance = E_x E_models KL(f̄ ‖ f);
- 0-1 error (Domingos, ICML 2000): the majority vote is the main prediction; bias = 1 where it is
  wrong, variance = the probability a model disagrees with it. These do not add up to the risk.

With S ≥ 2 seeds the variance splits by the law of total variance into sampling (across training
sets: Var_k of E_s[f]) and optimization (across seeds: E_k of Var_s[f]); the two add up to it.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

from dlcli.config import GENERATED, experiment_from_dict, read_config_file
from dlcli.errors import UserError
from dlcli.results import atomic_write_text, csv_cell, csv_text
from dlcli.sweep import Sweep, load_sweep

SPLITS = ("fresh", "disjoint", "bootstrap")
CSV_NAME = "bias_variance.csv"
NUMBERS = ["risk", "bias2", "variance", "variance_sampling", "variance_optimization", "noise", "bayes_error"]
COLUMNS = ["decomposition", *NUMBERS, "trials", "seeds", "split", "n_test"]
INDEX_KEY = "data.resample.index"  # the axis that picks the training set
RESERVED = {"--grid": ("seed", "data.seed", "data.resample"),  # keys the command sets itself
            "--set": ("data.resample",)}  # --set seed / data.seed choose the one test set
COMPLETED = ("completed", "early_stopped")

# The noise-free target where the generator has one (dlcli.data.sine: y = sin(π x₁) + N(0, noise²)),
# on the raw (not standardized) test inputs.
CLEAN_TARGETS: dict[str, Callable[[np.ndarray], np.ndarray]] = {"sine": lambda x: np.sin(np.pi * x[:, 0])}


# ---- the decompositions: pure functions of (K training sets, S seeds, N test points, ...) tensors ----


def squared_error(predictions: Tensor, targets: Tensor, clean_targets: Tensor | None = None) -> dict[str, float | None]:
    """Risk E‖f − y‖², variance, noise E(y − f*)² (where the noise-free target f* is given), and
    bias² = risk − variance − noise: the remainder, so the three add up to the risk exactly (Yang et al.
    define bias² the same way, after correcting the variance).

    predictions: (K, S, N) numbers or (K, S, N, C) vectors; targets and clean_targets: (N) or (N, C).
    """
    f, y = predictions.double(), targets.double()
    clean = None if clean_targets is None else clean_targets.double()
    if f.dim() == 3:  # numbers are vectors of one component
        f, y = f.unsqueeze(-1), y.unsqueeze(-1)
        clean = None if clean is None else clean.unsqueeze(-1)
    trials, seeds = f.shape[:2]
    risk = ((f - y) ** 2).sum(-1).mean()
    per_set = f.mean(1, keepdim=True)  # E_s f: each training set's prediction averaged over seeds
    between = ((per_set - per_set.mean(0, keepdim=True)) ** 2).sum(-1).mean()
    within = ((f - per_set) ** 2).sum(-1).mean()
    if seeds == 1:
        # Yang et al.'s correction N/(N−1) for N models: the mean squared deviation from the mean of
        # the same N models underestimates the variance by that factor.
        variance, sampling, optimization = trials / (trials - 1) * between, None, None
    else:
        # The same correction for the nested design (one-way ANOVA): E_k Var_s with S/(S−1), and
        # Var_k of the seed average with K/(K−1), less the seeds' share Var_s/S that the average keeps.
        # Each part is unbiased; the sampling part can come out slightly negative by chance.
        optimization = seeds / (seeds - 1) * within
        sampling = trials / (trials - 1) * between - optimization / seeds
        variance = sampling + optimization
    noise = None if clean is None else ((y - clean) ** 2).sum(-1).mean()
    bias2 = risk - variance - (0.0 if noise is None else noise)
    return _floats(risk=risk, bias2=bias2, variance=variance, variance_sampling=sampling,
                   variance_optimization=optimization, noise=noise)


def cross_entropy(log_probabilities: Tensor, labels: Tensor) -> dict[str, float | None]:
    """Risk E[−log f_y] = bias² + variance exactly (Yang et al.), f̄ the normalized geometric mean:
    bias² = E_x[−log f̄_y], variance = E_x E_models KL(f̄ ‖ f). No noise term: bias² includes it.

    With S ≥ 2, sampling = E_k KL(f̄ ‖ f̄_k) and optimization = E_k E_s KL(f̄_k ‖ f_ks), f̄_k the
    geometric mean over the seeds of training set k (f̄ is also the geometric mean of the f̄_k): they
    add up to the variance exactly.

    log_probabilities: (K, S, N, C); labels: (N) class indices.
    """
    log_f = log_probabilities.double()
    points = torch.arange(len(labels))
    log_mean = torch.log_softmax(log_f.mean((0, 1)), -1)  # log f̄, (N, C)
    risk = -log_f[:, :, points, labels].mean()
    bias2 = -log_mean[points, labels].mean()
    variance = _kl(log_mean, log_f).mean()
    sampling = optimization = None
    if log_f.shape[1] > 1:
        log_set_mean = torch.log_softmax(log_f.mean(1), -1)  # log f̄_k, (K, N, C)
        sampling = _kl(log_mean, log_set_mean).mean()
        optimization = _kl(log_set_mean.unsqueeze(1), log_f).mean()
    return _floats(risk=risk, bias2=bias2, variance=variance, variance_sampling=sampling,
                   variance_optimization=optimization, noise=None)


def zero_one(predicted: Tensor, labels: Tensor, num_classes: int) -> dict[str, float | None]:
    """Domingos: risk P(f ≠ y); the main prediction is the models' majority vote (ties: the lowest
    class); bias = P_x(main ≠ y), variance = P(f ≠ main). Not additive: where the main prediction is
    wrong, disagreeing with it can be right, so risk ≠ bias + variance in general.

    predicted: (K, S, N) class indices; labels: (N).
    """
    votes = F.one_hot(predicted, num_classes).sum((0, 1))  # (N, C)
    main = votes.argmax(-1)
    return _floats(risk=(predicted != labels).double().mean(), bias2=(main != labels).double().mean(),
                   variance=(predicted != main).double().mean(), variance_sampling=None,
                   variance_optimization=None, noise=None)


def decompose(loss: str, outputs: Tensor, targets: Tensor, clean_targets: Tensor | None = None) -> dict[str, dict]:
    """Every decomposition that applies to raw model outputs (K, S, N, width) against the test targets."""
    from dlcli.losses import predict_classes

    if targets.dtype != torch.long:  # regression: one output per sample
        return {"mse": squared_error(outputs[..., 0], targets, clean_targets)}
    if loss == "bce":
        logit = outputs[..., 0]
        log_probabilities = torch.stack([F.logsigmoid(-logit), F.logsigmoid(logit)], -1)
    else:
        log_probabilities = torch.log_softmax(outputs, -1)
    classes = log_probabilities.shape[-1]
    one_hot = F.one_hot(targets, classes).double()
    if loss == "mse":  # the vectors the model was trained to bring to the one-hot labels
        return {"mse": squared_error(outputs, one_hot), "zero_one": zero_one(outputs.argmax(-1), targets, classes)}
    return {"mse": squared_error(log_probabilities.exp(), one_hot),
            "cross_entropy": cross_entropy(log_probabilities, targets),
            "zero_one": zero_one(predict_classes(loss, outputs), targets, classes)}


def _kl(log_p: Tensor, log_q: Tensor) -> Tensor:
    """KL(p ‖ q) over the last axis, from log-probabilities (broadcasting)."""
    return (log_p.exp() * (log_p - log_q)).sum(-1)


def _floats(**values: Any) -> dict[str, float | None]:
    return {key: None if value is None else float(value) for key, value in values.items()}


# ---- the study: which runs, trained through the sweep machinery, then decomposed -----------------


@dataclass
class Study:
    sweep: Sweep  # every run: grid point × training set (data.resample.index) × seed
    keys: list[str]  # the swept keys that name a grid point
    trials: int  # K training sets per grid point
    seeds: int  # S seeds per training set
    split: str  # how the training sets are drawn: fresh | disjoint | bootstrap


@dataclass
class StudyResult:
    sweep: Any  # the runner's SweepResult
    rows: list[dict[str, Any]]  # one per grid point and decomposition
    incomplete: list[str]  # grid points left out because a run failed or diverged
    path: Path  # bias_variance.csv


def load_study(config_path: str | Path, trials: int, seeds: int | None = None, grid: list[str] = (),
               split: str | None = None, overrides: list[str] = ()) -> Study:
    """Validate the request and every run of it; all problems are reported together, nothing runs."""
    config_path = Path(config_path)
    problems = []
    if trials < 2:
        problems.append(f"--trials: {trials}: at least 2 training sets are needed to measure a variance")
    if seeds is not None and seeds < 1:
        problems.append(f"--seeds: {seeds}: at least 1")
    if split is not None and split not in SPLITS:
        problems.append(f"--split: unknown method {split!r} (allowed: {', '.join(SPLITS)})")
    for option, items in (("--grid", grid), ("--set", overrides)):
        for item in items:
            key = item.partition("=")[0].strip()
            if _is_under(key, RESERVED[option]):
                problems.append(f"{option} {key}: bias-variance sets it itself "
                                "(seeds with --seeds, training sets with --trials and --split)")
    raw = read_config_file(config_path)
    section = raw.pop("sweep", None)
    if isinstance(section, dict):
        for kind in ("grid", "zip"):
            for key in section.get(kind) or {}:
                if _is_under(key, RESERVED["--grid"]):
                    problems.append(f"{config_path}: sweep.{kind}.{key}: bias-variance sets it itself")
    try:
        base = experiment_from_dict(raw, overrides, source=str(config_path), base_dir=config_path.parent)
    except UserError as error:
        raise UserError(problems + error.problems) from None
    method = split or ("fresh" if base.data.name in GENERATED else "disjoint")
    if method == "fresh" and base.data.name not in GENERATED:
        problems.append(f"--split fresh: fresh draws need a generated data set ({', '.join(GENERATED)}); "
                        f"{base.data.name} is fixed: use --split disjoint or bootstrap")
    if problems:
        raise UserError(problems)
    data_seed = base.seed if base.data.seed is None else base.data.seed  # one test set for every run
    sweep = load_sweep(config_path, [*grid, f"{INDEX_KEY}=range(0,{trials})"], seeds=seeds,
                       overrides=[*overrides, f"data.seed={data_seed}", f"data.resample.method={method}",
                                  f"data.resample.count={trials}"])
    keys = [key for key in sweep.spec.keys if key not in ("seed", INDEX_KEY)]
    return Study(sweep, keys, trials, sweep.spec.seeds or 1, method)


def run_study(study: Study, out_root: str | Path, on_result: Callable | None = None,
              on_skipped: Callable | None = None, vectorize: bool = True,
              on_note: Callable | None = None) -> StudyResult:
    """Train what is not finished on disk (the training sets and seeds of a grid point as one stacked
    model, with `vectorize`), decompose every grid point, write bias_variance.csv."""
    from dlcli.runner import run_sweep

    result = run_sweep(study.sweep, out_root, on_result=on_result, on_skipped=on_skipped, vectorize=vectorize,
                       on_note=on_note)
    rows, incomplete = [], []
    for label, indices in grid_points(study).items():
        statuses = [result.rows[i]["status"] for i in indices]
        if any(status not in COMPLETED for status in statuses):
            bad = sum(status not in COMPLETED for status in statuses)
            incomplete.append(f"{label}: {bad} of {len(indices)} runs did not complete "
                              f"({', '.join(sorted(set(statuses) - set(COMPLETED)))})")
            continue
        rows += decompose_point(study, indices, [result.sweep_dir / result.rows[i]["run_id"] for i in indices])
    path = result.sweep_dir / CSV_NAME
    atomic_write_text(path, rows_to_csv(rows, study.keys))
    return StudyResult(result, rows, incomplete, path)


def _is_under(key: str, sections: tuple[str, ...]) -> bool:
    return any(key == section or key.startswith(section + ".") for section in sections)


def grid_points(study: Study) -> dict[str, list[int]]:
    """{grid point label: the indices of its K × S runs}, in the sweep's order."""
    groups: dict[str, list[int]] = {}
    for index, point in enumerate(study.sweep.points):
        label = "  ".join(f"{key}={csv_cell(point[key])}" for key in study.keys) or "all runs"
        groups.setdefault(label, []).append(index)
    return groups


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
                     "bayes_error": bayes, "trials": study.trials, "seeds": study.seeds, "split": study.split,
                     "n_test": len(targets)})
    return rows


def _test_outputs(experiment, run_dir: Path):
    """A run's raw outputs on the test set, its data rebuilt from the config as `dlcli evaluate` does."""
    from dlcli.evaluate import _evaluation_data, _load_model
    from dlcli.loop import evaluate_outputs
    from dlcli.train import resolve_device

    dataset = _evaluation_data(experiment, experiment)
    model = _load_model(run_dir, experiment, dataset, resolve_device(experiment.device))
    x = torch.as_tensor(dataset.x_test).to(next(model.parameters()).device)
    return evaluate_outputs(model, x).double().cpu(), dataset


def _clean_targets(experiment) -> Tensor | None:
    from dlcli.data import load_dataset

    target = CLEAN_TARGETS.get(experiment.data.name)
    if target is None:
        return None
    raw = load_dataset(experiment.data.model_copy(update={"standardize": False}), experiment.seed)
    return torch.as_tensor(target(raw.x_test.astype(np.float64)))


def rows_to_csv(rows: list[dict[str, Any]], keys: list[str]) -> str:
    return csv_text(rows, [*keys, *COLUMNS])

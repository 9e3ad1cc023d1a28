"""Re-score a finished run: loss, error, per-class table, confusion matrix, calibration error.

The data set is rebuilt from the run's config.yaml (generation is seeded, so it is the same data);
`data.*` overrides evaluate the same weights on other data, standardized with the original
training statistics.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

import torch
from torch import Tensor

from dlcli import layout
from dlcli.components import losses
from dlcli.components.data import feature_stats, hold_out, load_dataset, standardize
from dlcli.components.datasets import Dataset
from dlcli.components.models import build_model
from dlcli.components.prepare import resolve_device
from dlcli.config.load import load_experiment
from dlcli.config.schema import Experiment
from dlcli.engine.batches import device_stats
from dlcli.engine.epoch import evaluate_outputs
from dlcli.errors import UserError

CALIBRATION_BINS = 15  # equal-width confidence bins for the expected calibration error


def evaluate_run(run_dir: str | Path, split: str = "test", overrides: list[str] | tuple[str, ...] = (),
                 device: str = "auto") -> dict[str, Any]:
    """Evaluate a run's saved weights on one split; writes and returns evaluation.json's content."""
    run_dir = Path(run_dir)
    for required in (layout.CONFIG, layout.WEIGHTS):
        if not (run_dir / required).is_file():
            raise UserError(f"{run_dir}: not a finished run directory (no {required})")
    if split not in ("test", "train", "val"):
        raise UserError(f"--split: unknown split {split!r} (allowed: test, train, val)")
    bad = [item for item in overrides if not item.startswith("data.")]
    if bad:
        raise UserError([f"--set {item}: evaluate changes data.* keys only" for item in bad])

    trained = load_experiment(run_dir / layout.CONFIG)
    target = load_experiment(run_dir / layout.CONFIG, overrides)
    dataset = evaluation_data(trained, target)
    model = load_model(run_dir, trained, dataset, resolve_device(device))

    if getattr(dataset, f"x_{split}") is None:
        raise UserError("--split val: this run held out no validation set (train.val_fraction is 0)")
    x = torch.as_tensor(getattr(dataset, f"x_{split}")).to(next(model.parameters()).device)
    y = torch.as_tensor(getattr(dataset, f"y_{split}")).to(x.device)
    outputs = evaluate_outputs(model, x, device_stats(dataset, x.device))
    result: dict[str, Any] = {
        "run_id": run_dir.name,
        "split": split,
        "overrides": list(overrides),
        "samples": len(y),
        "loss": losses.LOSSES[trained.loss](outputs, y).mean().item(),
        "error": losses.errors(trained.loss, outputs, y).mean().item(),
        "bayes_error": dataset.bayes_error,
    }
    if dataset.task == "classification":
        result |= classification_report(trained.loss, outputs, y, dataset)
    layout.atomic_write_json(run_dir / layout.EVALUATION, result)
    return result


def evaluation_data(trained: Experiment, target: Experiment, force: bool = False) -> Dataset:
    """The data of `target` (a run's config with data.* changed, or the same), standardized with the
    statistics of the data the run trained on, its validation set held out as in training. `force`:
    load them even when they look too large for the free memory."""
    raw_data = lambda experiment: load_dataset(  # noqa: E731
        experiment.data.model_copy(update={"standardize": False}), experiment.seed, force)
    original = raw_data(trained)
    dataset = raw_data(target) if target != trained else original
    if trained.data.standardize:
        dataset = standardize(dataset, *feature_stats(original.x_train))
    return hold_out(dataset, trained.train.val_fraction, trained.seed)  # the training split as trained on


def load_model(run_dir: Path, experiment: Experiment, dataset: Dataset, device: torch.device) -> torch.nn.Module:
    """A run's model with its saved weights (model.pt), for inputs shaped like `dataset`'s."""
    outputs = losses.output_width(experiment.loss, dataset.task, dataset.num_classes)
    model = build_model(experiment.model, dataset.input_shape, outputs)
    try:
        model.load_state_dict(layout.load_weights(run_dir / layout.WEIGHTS))
    except RuntimeError:
        raise UserError(f"{run_dir / layout.WEIGHTS}: the saved weights do not fit this data "
                        f"(input shape {dataset.input_shape}, {outputs} outputs)") from None
    return model.to(device)


def classification_report(loss: str, outputs: Tensor, targets: Tensor, dataset: Dataset) -> dict[str, Any]:
    """Per-class counts, precision and recall, the confusion matrix, and the calibration error."""
    k = dataset.num_classes
    predicted = losses.predict_classes(loss, outputs)
    confusion = torch.zeros(k, k, dtype=torch.long)
    confusion.index_put_((targets.cpu(), predicted.cpu()), torch.ones_like(targets.cpu()), accumulate=True)
    names = dataset.class_names or tuple(str(i) for i in range(k))
    per_class = []
    for i in range(k):
        support, hits, claimed = int(confusion[i].sum()), int(confusion[i, i]), int(confusion[:, i].sum())
        per_class.append({
            "class": names[i],
            "support": support,
            "error": 1 - hits / support if support else None,
            "precision": hits / claimed if claimed else None,
            "recall": hits / support if support else None,
        })
    probabilities = losses.class_probabilities(loss, outputs)
    return {
        "classes": list(names),
        "per_class": per_class,
        "confusion": confusion.tolist(),
        "ece": expected_calibration_error(probabilities, targets),
    }


def expected_calibration_error(probabilities: Tensor, targets: Tensor, bins: int = CALIBRATION_BINS) -> float:
    """Σ_b (n_b / n) · |accuracy_b − confidence_b| over equal-width bins of the top-class probability."""
    confidence, predicted = probabilities.max(-1)
    correct = (predicted == targets).double()
    bin_index = (confidence.double() * bins).long().clamp(max=bins - 1)
    total = 0.0
    for b in range(bins):
        members = bin_index == b
        if members.any():
            gap = correct[members].mean() - confidence[members].double().mean()
            total += members.double().mean().item() * abs(gap.item())
    return total

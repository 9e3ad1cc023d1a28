"""The LR range test (Smith, arXiv 1506.01186): raise the learning rate exponentially, step by step,
from the config's initial weights, and watch the loss fall and then blow up.

The suggestion is the steepest descent of the smoothed loss against log(lr); for a triangular
schedule, max_lr is a third of the lr at the lowest smoothed loss and base_lr a quarter of max_lr.
Every lr here is a value of optim.lr: with optim.lr_scaling each update uses it scaled with the batch
size, as training does, so the suggestion goes into the config as it is.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from dlcli import layout
from dlcli.components import losses
from dlcli.components.optimizers import build_optimizer
from dlcli.components.prepare import prepare
from dlcli.components.schedules import batch_size_at, lr_scale
from dlcli.config.flat import to_yaml
from dlcli.config.schema import Experiment
from dlcli.engine.batches import device_arrays, epoch_batches, input_stats, model_inputs
from dlcli.errors import UserError

SMOOTHING = 0.95  # exponential moving average of the batch loss, bias-corrected
BLOW_UP = 4.0  # stop once the smoothed loss exceeds this multiple of its minimum


@dataclass
class LrFindResult:
    rows: list[dict[str, float]]
    suggested_lr: float | None
    rule: str
    triangular: dict[str, float] = field(default_factory=dict)  # base_lr and max_lr
    stopped_early: bool = False
    run_dir: Path | None = None  # where `lr_find` wrote it
    lr_scale: float = 1.0  # what optim.lr_scaling multiplies each lr by at the test's batch size


def lr_find(experiment: Experiment, out_root: str | Path = "results", min_lr: float = 1e-6, max_lr: float = 10.0,
            steps: int = 200) -> LrFindResult:
    """The LR range test, written to a new <out_root>/<name>/lr_find-<time>/: config.yaml,
    lr_find.csv (one row per step) and lr_find.json (the suggestion)."""
    if not 0 < min_lr < max_lr < math.inf:
        raise UserError(f"--min {min_lr} / --max {max_lr}: need 0 < min < max, both finite")
    result = lr_range_test(experiment, min_lr, max_lr, steps)
    run_dir = layout.new_run_dir(Path(out_root), experiment.name, "", prefix="lr_find-")
    layout.atomic_write_text(run_dir / layout.CONFIG, to_yaml(experiment))
    curve = layout.CsvLog(run_dir / layout.LR_FIND_CURVE, layout.LR_FIND_COLUMNS)
    curve.append_many(result.rows)
    curve.close()
    layout.atomic_write_json(run_dir / layout.LR_FIND_SUMMARY, summary_of(result))
    result.run_dir = run_dir
    return result


def lr_range_test(experiment: Experiment, min_lr: float = 1e-6, max_lr: float = 10.0,
                  steps: int = 200) -> LrFindResult:
    """Train from the initial weights while optim.lr = min·(max/min)^(k/(steps−1)), scaled with the
    batch size as training scales it (optim.lr_scaling); nothing is written."""
    if experiment.optim.name == "lstsq":
        raise UserError("optim.name: lstsq solves without a learning rate; lr-find needs sgd, adam or adamw")
    prepared = prepare(experiment)
    model, data = prepared.model, device_arrays(prepared.dataset, prepared.device)
    x, y, stats = data["x_train"], data["y_train"], input_stats(data)
    optimizer = build_optimizer(model.parameters(), experiment.optim.model_copy(update={"lr": min_lr}),
                                experiment.regularization.weight_decay)
    generator = torch.Generator().manual_seed(experiment.seed)
    loss_fn = losses.LOSSES[experiment.loss]
    size = batch_size_at(experiment.optim, 1, len(x))
    scale = lr_scale(experiment.optim, size)
    batches: list[torch.Tensor] = []
    rows, average, best = [], 0.0, math.inf
    model.train()
    for step in range(steps):
        if not batches:
            batches = epoch_batches(len(x), size, experiment.optim.batch_order, generator, x.device)
        indices = batches.pop(0)
        lr = min_lr * (max_lr / min_lr) ** (step / max(1, steps - 1))
        for group in optimizer.param_groups:
            group["lr"] = lr * scale
        outputs = model(model_inputs(x[indices], stats))
        loss = loss_fn(outputs, y[indices]).mean()
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        value = loss.item()  # one read-back per step is fine for a few hundred steps
        if not math.isfinite(value):
            break
        average = SMOOTHING * average + (1 - SMOOTHING) * value
        smoothed = average / (1 - SMOOTHING ** (step + 1))
        rows.append({"step": step + 1, "lr": lr, "loss": value, "smoothed_loss": smoothed,
                     "accuracy": _accuracy(experiment.loss, outputs, y[indices])})
        best = min(best, smoothed)
        if smoothed > BLOW_UP * best:
            break
    result = _suggest(rows, stopped_early=len(rows) < steps)
    result.lr_scale = scale
    return result


def _accuracy(loss: str, outputs: torch.Tensor, targets: torch.Tensor) -> float:
    if targets.dtype != torch.long:
        return float("nan")  # regression has no accuracy
    return (losses.predict_classes(loss, outputs) == targets).float().mean().item()


def _suggest(rows: list[dict[str, float]], stopped_early: bool) -> LrFindResult:
    if len(rows) < 10:
        why = "too few steps before the loss blew up: lower --min" if stopped_early else "too few steps: raise --steps"
        return LrFindResult(rows, None, why + " (a suggestion needs 10)", {}, stopped_early)
    lrs = np.array([row["lr"] for row in rows])
    smoothed = np.array([row["smoothed_loss"] for row in rows])
    lowest = int(np.argmin(smoothed))
    start = len(rows) // 10  # the first steps of the moving average are too noisy to trust
    slope = np.gradient(smoothed, np.log(lrs))
    window = slope[start: max(lowest, start + 1)]
    steepest = start + int(np.argmin(window)) if len(window) else lowest
    max_cycle = float(lrs[lowest] / 3)
    return LrFindResult(
        rows, float(lrs[steepest]),
        "steepest descent of the smoothed loss against log(lr), before its minimum",
        {"max_lr": max_cycle, "base_lr": max_cycle / 4, "lowest_loss_lr": float(lrs[lowest])},
        stopped_early,
    )


def summary_of(result: LrFindResult) -> dict[str, Any]:
    return {"suggested_lr": result.suggested_lr, "rule": result.rule, **result.triangular,
            "steps": len(result.rows), "stopped_early": result.stopped_early, "lr_scale": result.lr_scale}

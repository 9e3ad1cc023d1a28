"""How long runs will take: time a few updates and one evaluation of a training unit in memory
(nothing is written), and extrapolate to the whole run (`dlcli sweep --dry-run`)."""
from __future__ import annotations

import time
from dataclasses import replace

import torch

from dlcli.components import schedules
from dlcli.components.prepare import Prepared
from dlcli.engine.batches import stack_data
from dlcli.engine.epoch import Member, measure, train_epoch
from dlcli.engine.grouping import build_models


def estimate_seconds(unit: list[Prepared], probe_steps: int = 20) -> float:
    """The wall time of training these prepared runs together (one alone, or a stack). Their models
    take a few steps: prepare them anew to train them for real."""
    lead = unit[0].experiment
    n = len(unit[0].dataset.x_train)
    run_plan = schedules.plan(lead.optim, max(1, lead.train.epochs), n)
    size = run_plan.batch_sizes[0]
    probe = min(probe_steps, run_plan.steps_per_epoch[0])
    if lead.optim.name == "lstsq":  # one solve on all the data is the whole run
        size, probe, run_plan = n, 1, schedules.Plan((n,), (1,))
    probe_data = [replace(point.dataset, x_train=point.dataset.x_train[: probe * size],
                          y_train=point.dataset.y_train[: probe * size]) for point in unit]
    probe_plan = schedules.plan(lead.optim, 1, probe * size)
    models = build_models(unit)
    device = unit[0].device
    probe_split, full_split = stack_data(probe_data, device), stack_data([point.dataset for point in unit], device)
    members = [Member(point.experiment, torch.Generator(), None) for point in unit]
    timings = []
    for _ in range(2):  # the first pass warms up allocators and kernels; time the second
        started = time.perf_counter()
        train_epoch(models, probe_split, members, probe_plan, 1)
        middle = time.perf_counter()
        measure(models, full_split, lead.loss, None)
        timings.append(((middle - started) / probe, time.perf_counter() - middle))
    per_step, per_evaluation = timings[-1]
    epochs = lead.train.epochs
    return run_plan.total_steps * per_step * (epochs > 0) + (epochs + 1) * per_evaluation

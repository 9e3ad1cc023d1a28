"""Batch-size and learning-rate schedules: pure functions of the epoch and of the update step.

A `Plan` fixes, before training, how many updates each epoch makes (they depend on its batch size), so
that every schedule is a plain function of the global step.
"""
from __future__ import annotations

import bisect
import itertools
import math
from dataclasses import dataclass

from dlcli.config.schema import BatchSchedule, OptimConfig


def batch_size_at(optim: OptimConfig, epoch: int, n: int) -> int:
    """The batch size of a (1-based) epoch on n training samples; `full` is n."""
    spec = optim.batch_size
    if isinstance(spec, BatchSchedule):
        size = spec.start * spec.factor ** ((epoch - 1) // spec.every)
        size = min(size, spec.max) if spec.max is not None else size
    elif isinstance(spec, list):
        size = spec[min(epoch, len(spec)) - 1]  # the last entry holds for the remaining epochs
    else:
        size = spec
    return n if size == "full" else max(1, min(int(size), n))


@dataclass(frozen=True)
class Plan:
    """Updates per epoch for a whole run: the map between steps and epochs."""

    batch_sizes: tuple[int, ...]  # per epoch
    steps_per_epoch: tuple[int, ...]
    epoch_starts: tuple[int, ...] = ()  # steps made before each epoch; filled in by __post_init__

    def __post_init__(self) -> None:
        # Computed once: lr_at runs every update, and must not rebuild this each time.
        starts = tuple(itertools.accumulate(self.steps_per_epoch, initial=0))
        object.__setattr__(self, "epoch_starts", starts[:-1])
        object.__setattr__(self, "_total", starts[-1])

    @property
    def total_steps(self) -> int:
        return self._total

    def epoch_of(self, step: int) -> int:
        """The (1-based) epoch in which the update with this 0-based index is made."""
        return max(1, bisect.bisect_right(self.epoch_starts, step))

    def steps_before(self, epoch: int) -> int:
        """Updates made in the epochs before this (1-based) one."""
        if epoch - 1 >= len(self.epoch_starts):
            return self._total
        return self.epoch_starts[max(0, epoch - 1)]


def plan(optim: OptimConfig, epochs: int, n: int) -> Plan:
    sizes = tuple(batch_size_at(optim, epoch, n) for epoch in range(1, epochs + 1))
    return Plan(sizes, tuple(math.ceil(n / size) for size in sizes))


def lr_at(optim: OptimConfig, run_plan: Plan, step: int) -> float:
    """The learning rate of the update with this 0-based index."""
    epoch = run_plan.epoch_of(step)
    scale = _scaling(optim, run_plan.batch_sizes[epoch - 1] if run_plan.batch_sizes else 1)
    base = optim.lr * scale
    schedule = optim.schedule
    if schedule.name == "step":
        lr = base * schedule.factor ** ((epoch - 1) // schedule.every)
    elif schedule.name == "cosine":
        progress = step / max(1, run_plan.total_steps - 1)  # 0 at the first update, 1 at the last
        lr = schedule.min_lr + (base - schedule.min_lr) * (1 + math.cos(math.pi * progress)) / 2
    elif schedule.name == "triangular":
        lr = triangular(step, base, schedule.max_lr * scale, schedule.step_size)  # both ends scale with B
    else:
        lr = base
    warmup_steps = run_plan.steps_before(schedule.warmup_epochs + 1)
    if step < warmup_steps:
        lr *= (step + 1) / warmup_steps  # linear; the last warmup step reaches the scheduled lr exactly
    return lr


def triangular(step: int, base_lr: float, max_lr: float, step_size: int) -> float:
    """Smith's cyclical lr (arXiv 1506.01186): base → max → base over 2·step_size updates, repeated."""
    cycle = math.floor(1 + step / (2 * step_size))
    x = abs(step / step_size - 2 * cycle + 1)
    return base_lr + (max_lr - base_lr) * max(0.0, 1 - x)


def _scaling(optim: OptimConfig, batch_size: int) -> float:
    """The linear scaling rule (Goyal et al., arXiv 1706.02677): lr × B / base batch size."""
    if optim.lr_scaling.rule == "linear":
        return batch_size / optim.lr_scaling.base_batch_size
    return 1.0

"""Batch-size and learning-rate schedules: pure functions of the epoch and of the update step.

A `Plan` fixes, before training, how many updates each epoch makes (they depend on its batch size), so
that every schedule is a plain function of the global step. It holds runs of epochs with one batch size,
not a value per epoch: a billion epochs cost no more to plan than ten (the batch size changes at most
once per list entry or once per distinct size of a growth schedule).
"""
from __future__ import annotations

import bisect
import math
from collections.abc import Sequence
from dataclasses import dataclass

from dlcli.config.schema import BatchSchedule, OptimConfig, TrainConfig


def batch_size_at(optim: OptimConfig, epoch: int, n: int) -> int:
    """The batch size of a (1-based) epoch on n training samples; `full` is n."""
    spec = optim.batch_size
    if isinstance(spec, BatchSchedule):
        size = _grown(spec, epoch, n)
        size = min(size, spec.max) if spec.max is not None else size
    elif isinstance(spec, list):
        size = spec[min(epoch, len(spec)) - 1]  # the last entry holds for the remaining epochs
    else:
        size = spec
    return n if size == "full" else max(1, min(int(size), n))


def _grown(spec: BatchSchedule, epoch: int, n: int) -> float:
    """start · factor^⌊(epoch − 1) / every⌋; where that is far past the cap (max, else n) the cap itself,
    without computing a power that would overflow (or take ages as an integer) in a long run."""
    growths = (epoch - 1) // spec.every
    cap = spec.max if spec.max is not None else n
    if spec.factor > 1 and growths * math.log2(spec.factor) > math.log2(max(cap, 1) / spec.start) + 1:
        return cap  # the power exceeds twice the cap: the min() below would give the cap anyway
    return spec.start * spec.factor ** growths


class PerEpoch(Sequence):
    """One whole number per epoch, indexed from 0 like a tuple, held as runs of equal values: run r
    starts at (1-based) epoch firsts[r] and lasts until the next run starts (the last, to the end)."""

    def __init__(self, firsts: list[int], values: list[int], epochs: int):
        self.firsts, self.values, self.epochs = firsts, values, epochs

    def __len__(self) -> int:
        return self.epochs

    def __getitem__(self, index):
        if isinstance(index, slice):
            return [self[i] for i in range(*index.indices(self.epochs))]
        position = index + self.epochs if index < 0 else index
        if not 0 <= position < self.epochs:
            raise IndexError(f"epoch index {index} out of range for {self.epochs} epochs")
        return self.values[bisect.bisect_right(self.firsts, position + 1) - 1]

    def __repr__(self) -> str:
        return f"PerEpoch(firsts={self.firsts}, values={self.values}, epochs={self.epochs})"


def _runs_of(values: Sequence[int]) -> PerEpoch:
    """Any per-epoch sequence as runs (a PerEpoch already is one)."""
    if isinstance(values, PerEpoch):
        return values
    firsts, kept = [], []
    for epoch, value in enumerate(values, start=1):
        if not kept or value != kept[-1]:
            firsts.append(epoch)
            kept.append(value)
    return PerEpoch(firsts, kept, len(values))


@dataclass(frozen=True)
class Plan:
    """Updates per epoch for a whole run: the map between steps and epochs. The per-epoch sequences may
    be tuples or `PerEpoch` runs; every lookup costs O(log runs), whatever the number of epochs."""

    batch_sizes: Sequence[int]  # per epoch
    steps_per_epoch: Sequence[int]

    def __post_init__(self) -> None:
        # Computed once: lr_at runs every update, and must not rebuild this each time.
        runs = _runs_of(self.steps_per_epoch)
        starts, total = [], 0
        for r, steps in enumerate(runs.values):
            starts.append(total)
            last = runs.firsts[r + 1] - 1 if r + 1 < len(runs.firsts) else runs.epochs
            total += (last - runs.firsts[r] + 1) * steps
        object.__setattr__(self, "_runs", runs)
        object.__setattr__(self, "_run_starts", starts)  # steps made before each run's first epoch
        object.__setattr__(self, "_total", total)

    @property
    def total_steps(self) -> int:
        return self._total

    def epoch_of(self, step: int) -> int:
        """The (1-based) epoch in which the update with this 0-based index is made."""
        r = bisect.bisect_right(self._run_starts, step) - 1
        if r < 0:
            return 1
        first, steps = self._runs.firsts[r], self._runs.values[r]
        last = self._runs.firsts[r + 1] - 1 if r + 1 < len(self._runs.firsts) else self._runs.epochs
        begun = last - first + 1 if steps == 0 else min(last - first + 1, (step - self._run_starts[r]) // steps + 1)
        return max(1, first - 1 + begun)  # epochs begun by this step, as bisect over epoch starts counts them

    def steps_before(self, epoch: int) -> int:
        """Updates made in the epochs before this (1-based) one."""
        if epoch - 1 >= self._runs.epochs:
            return self._total
        epoch = max(1, epoch)
        r = bisect.bisect_right(self._runs.firsts, epoch) - 1
        return self._run_starts[r] + (epoch - self._runs.firsts[r]) * self._runs.values[r]


def plan(optim: OptimConfig, epochs: int, n: int) -> Plan:
    """The run's plan, built from runs of equal batch size: no work per epoch."""
    firsts, sizes, epoch = [], [], 1
    while epoch <= epochs:
        size = batch_size_at(optim, epoch, n)
        firsts.append(epoch)
        sizes.append(size)
        epoch = _last_epoch_with(optim, epoch, size, epochs, n) + 1
    steps = [math.ceil(n / size) for size in sizes]
    return Plan(PerEpoch(firsts, sizes, epochs), PerEpoch(firsts, steps, epochs))


def _last_epoch_with(optim: OptimConfig, epoch: int, size: int, epochs: int, n: int) -> int:
    """The last epoch from this one on that keeps its batch size."""
    spec = optim.batch_size
    if isinstance(spec, list):
        return epoch if epoch < len(spec) else epochs  # the last entry holds for the remaining epochs
    if not isinstance(spec, BatchSchedule):
        return epochs
    low, high = epoch, epochs  # a growth schedule never shrinks: binary search for where it grows
    while low < high:
        middle = (low + high + 1) // 2
        if batch_size_at(optim, middle, n) == size:
            low = middle
        else:
            high = middle - 1
    return low


def lr_at(optim: OptimConfig, run_plan: Plan, step: int) -> float:
    """The learning rate of the update with this 0-based index."""
    epoch = run_plan.epoch_of(step)
    scale = lr_scale(optim, run_plan.batch_sizes[epoch - 1] if run_plan.batch_sizes else 1)
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


def lr_scale(optim: OptimConfig, batch_size: int) -> float:
    """The linear scaling rule (Goyal et al., arXiv 1706.02677): lr × B / base batch size."""
    if optim.lr_scaling.rule == "linear":
        return batch_size / optim.lr_scaling.base_batch_size
    return 1.0


def measured(train: TrainConfig, epoch: int) -> bool:
    """Whether the loop measures and logs this epoch: epoch 0, every `eval_every`-th and the last."""
    return epoch % train.eval_every == 0 or epoch == train.epochs


def measured_epochs(train: TrainConfig, last: int) -> list[int]:
    """The epochs from 0 to `last` that the loop measures, in order."""
    epochs = list(range(0, last + 1, train.eval_every))
    return epochs + [train.epochs] if train.epochs <= last and epochs[-1] != train.epochs else epochs

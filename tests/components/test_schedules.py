"""The batch-size plan is lazy: its numbers equal the per-epoch ones written out from the schema's
documentation, and planning a billion epochs costs no more than planning ten."""
from __future__ import annotations

import bisect
import itertools
import math

import pytest

from dlcli.components.schedules import Plan, batch_size_at, lr_at, plan
from dlcli.config.schema import OptimConfig

SPECS = [32, "full", 1, [10, 25, "full"], [30, 40], [7, 7, 3],
         {"start": 8, "factor": 2, "every": 2, "max": 32}, {"start": 8, "factor": 3, "every": 1},
         {"start": 3, "factor": 1.5, "every": 3}, {"start": 5, "factor": 1}]


def eager(optim: OptimConfig, epochs: int, n: int) -> tuple[list[int], list[int], list[int]]:
    """Batch size, updates and first update of every epoch, one epoch at a time."""
    sizes = [batch_size_at(optim, epoch, n) for epoch in range(1, epochs + 1)]
    steps = [math.ceil(n / size) for size in sizes]
    return sizes, steps, list(itertools.accumulate(steps, initial=0))


@pytest.mark.parametrize("spec", SPECS, ids=str)
@pytest.mark.parametrize("epochs, n", [(0, 50), (1, 50), (9, 100), (23, 37)])
def test_the_lazy_plan_has_the_numbers_of_every_epoch(spec, epochs, n):
    optim = OptimConfig(batch_size=spec, schedule={"name": "cosine"})
    sizes, steps, starts = eager(optim, epochs, n)
    run_plan = plan(optim, epochs, n)
    assert list(run_plan.batch_sizes) == sizes and list(run_plan.steps_per_epoch) == steps
    assert [run_plan.batch_sizes[e - 1] for e in range(1, epochs + 1)] == sizes
    assert run_plan.total_steps == starts[-1]
    for step in range(-1, starts[-1] + 2):
        assert run_plan.epoch_of(step) == max(1, bisect.bisect_right(starts[:-1], step)), step
    for epoch in range(1, epochs + 3):
        assert run_plan.steps_before(epoch) == starts[min(epoch - 1, epochs)], epoch
    explicit = Plan(tuple(sizes), tuple(steps))  # a plan written out by hand agrees
    assert [lr_at(optim, explicit, t) for t in range(starts[-1])] == [lr_at(optim, run_plan, t)
                                                                        for t in range(starts[-1])]


@pytest.mark.parametrize("spec", SPECS, ids=str)
def test_a_billion_epochs_plan_at_once(spec):
    optim = OptimConfig(batch_size=spec)
    epochs, n = 10**9, 1000
    run_plan = plan(optim, epochs, n)
    last = batch_size_at(optim, epochs, n)
    assert len(run_plan.batch_sizes) == epochs and run_plan.batch_sizes[-1] == last
    assert run_plan.epoch_of(run_plan.total_steps - 1) == epochs
    assert run_plan.steps_before(epochs) == run_plan.total_steps - math.ceil(n / last)
    early = eager(optim, 50, n)[2]
    assert [run_plan.steps_before(epoch) for epoch in range(1, 51)] == early[:-1]


def test_a_growth_schedule_never_computes_a_huge_power():
    # 2 ** (a billion) would take ages as an integer and overflow as a float: past the cap it is the cap.
    optim = OptimConfig(batch_size={"start": 1, "factor": 2, "every": 1})
    assert batch_size_at(optim, 10**9, 500) == 500
    capped = OptimConfig(batch_size={"start": 1, "factor": 2.0, "every": 1, "max": 64})
    assert batch_size_at(capped, 10**9, 500) == 64

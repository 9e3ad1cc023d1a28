"""Batch orders: every sample once per epoch, shuffle, sequential and stride."""
from __future__ import annotations

import pytest
import torch

from dlcli.engine.batches import epoch_batches


# ---- batch orders --------------------------------------------------------------------------------


def _flat(batches) -> list[int]:
    return [i for batch in batches for i in batch.tolist()]


@pytest.mark.parametrize("n, size", [(100, 32), (100, 25), (10, 3), (7, 7), (5, "full")])
@pytest.mark.parametrize("order", ["shuffle", "sequential", "stride"])
def test_every_sample_once_per_epoch(n, size, order):
    batches = epoch_batches(n, size, order, torch.Generator().manual_seed(0))
    width = n if size == "full" else size
    assert len(batches) == -(-n // width)  # ceil(n / size) updates: the last partial batch is kept
    assert sorted(_flat(batches)) == list(range(n))
    assert all(0 < len(batch) <= width for batch in batches)


@pytest.mark.parametrize("order", ["shuffle", "sequential"])
def test_batches_have_the_batch_size_and_a_partial_last_batch(order):
    batches = epoch_batches(100, 32, order, torch.Generator().manual_seed(0))
    assert [len(batch) for batch in batches] == [32, 32, 32, 4]


def test_sequential_is_in_order():
    batches = epoch_batches(100, 32, "sequential")
    assert _flat(batches) == list(range(100))
    assert batches[-1].tolist() == [96, 97, 98, 99]


def test_shuffle_is_a_fresh_permutation_each_epoch():
    generator = torch.Generator().manual_seed(0)
    epochs = [_flat(epoch_batches(100, 32, "shuffle", generator)) for _ in range(3)]
    for order in epochs:
        assert sorted(order) == list(range(100)) and order != list(range(100))
    assert epochs[0] != epochs[1] and epochs[1] != epochs[2]


@pytest.mark.parametrize("n, size", [(96, 32), (100, 25), (100, 32), (10, 3)])
def test_stride_batches_span_the_data_with_a_fixed_step(n, size):
    batches = epoch_batches(n, size, "stride")
    assert sorted(_flat(batches)) == list(range(n))
    steps = set()
    for batch in batches:
        indices = batch.tolist()
        differences = {b - a for a, b in zip(indices, indices[1:])}
        assert len(differences) == 1, f"batch {indices} has no fixed step"
        (step,) = differences
        steps.add(step)
        assert indices[0] < step and indices[-1] >= n - step  # from the start of the data to its end
    assert len(steps) == 1

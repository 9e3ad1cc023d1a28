"""Whether a run fits in its device's memory, checked from the config and the data's shape before
anything is allocated.

A model too large for memory used to fail deep inside the allocator with a traceback, after its run
folder was made; generating a data set too large for memory did the same. `model_memory_problem` and
`data_memory_problem` estimate what is needed and compare it with what the device has free, so that
`prepare` can refuse the run in one line. `--force` (`force=True`) skips both and tries anyway.
"""
from __future__ import annotations

import math
import os
from pathlib import Path

import torch

from dlcli.components.models import layer_sizes
from dlcli.components.schedules import plan
from dlcli.config.schema import Experiment

BYTES_PER_NUMBER = 4  # float32
EVAL_CHUNK = 8192  # samples per forward pass when a split is measured: dlcli.engine.interface.EVAL_BATCH
SIZE_KEYS = {"mlp": "model.hidden", "cnn": "model.hidden", "random_features": "model.features",
             "resnet18": "model.width"}


def parameter_copies(experiment: Experiment) -> int:
    """Copies of the parameters training holds: the weights, their gradients, and the optimizer's state
    (sgd: momentum buffers when momentum > 0; adam and adamw: two moment estimates)."""
    optim = experiment.optim
    state = {"sgd": 1 if optim.momentum > 0 else 0, "adam": 2, "adamw": 2}.get(optim.name, 0)
    return 2 + state


def training_numbers(experiment: Experiment, input_shape: tuple[int, ...], outputs: int,
                     split_sizes: list[int], input_bytes: int = BYTES_PER_NUMBER) -> tuple[int, int]:
    """(parameters, numbers held in memory while training): the parameters with their gradients and
    optimizer state, fixed buffers, the activations of the largest batch (kept for the backward pass,
    and their gradients) or of one evaluation chunk, and the data on the device (`input_bytes` per
    input value: 1 for uint8 images, a quarter of a float32 number, which their float batch adds)."""
    layers = layer_sizes(experiment.model, input_shape, outputs)
    parameters = sum(layer.parameters for layer in layers)
    widths = [layer.outputs for layer in layers]
    run_plan = plan(experiment.optim, max(1, experiment.train.epochs), max(1, split_sizes[0]))
    largest_batch = max(run_plan.batch_sizes.values)  # a PerEpoch: one value per run of epochs
    activations = max(2 * largest_batch * sum(widths), 2 * min(EVAL_CHUNK, max(split_sizes)) * max(widths))
    data = sum(split_sizes) * (math.prod(input_shape) * input_bytes // BYTES_PER_NUMBER + 1)
    if input_bytes != BYTES_PER_NUMBER:  # the normalized float copy of a batch or evaluation chunk
        activations += max(largest_batch, min(EVAL_CHUNK, max(split_sizes))) * math.prod(input_shape)
    numbers = parameters * parameter_copies(experiment) + sum(layer.buffers for layer in layers) + activations
    return parameters, numbers + data


def model_memory_problem(experiment: Experiment, input_shape: tuple[int, ...], outputs: int,
                         split_sizes: list[int], device: torch.device,
                         input_bytes: int = BYTES_PER_NUMBER) -> str | None:
    """A one-line problem when training this model would not fit in the device's free memory, else
    None (also when the free memory cannot be read)."""
    parameters, numbers = training_numbers(experiment, input_shape, outputs, split_sizes, input_bytes)
    needed, available = numbers * BYTES_PER_NUMBER, available_bytes(device)
    if available is None or needed <= available:
        return None
    key = "model.width" if experiment.model.width is not None else SIZE_KEYS.get(experiment.model.name, "model")
    copies = parameter_copies(experiment)
    kept = "weights and gradients" if copies == 2 else f"weights, gradients and {experiment.optim.name} state"
    return (f"{key}: training this {experiment.model.name} needs about {gigabytes(needed)} ({parameters:,} "
            f"parameters ×{copies} for {kept}, plus activations and data) and {device.type} has "
            f"{gigabytes(available)} free; make the model smaller, or pass --force to try anyway")


def data_memory_problem(name: str, numbers: int) -> str | None:
    """A one-line problem when generating a data set that draws this many numbers (float64 while drawn,
    float32 kept) would not fit in the free memory, else None."""
    needed = numbers * 12
    available = _short_of(needed)
    if available is None:
        return None
    return (f"data: generating {name} as configured (data.n_train, data.n_test, data.params) needs about "
            f"{gigabytes(needed)} and the machine has {gigabytes(available)} free; ask for less, or pass --force "
            "to try anyway")


def stored_data_problem(name: str, needed: int) -> str | None:
    """A one-line problem when reading an image set takes more than the machine's free memory, else None.
    Every image is held in memory (on the host, then on the device): streaming batches from disk
    (a DataLoader) is not implemented."""
    available = _short_of(needed)
    if available is None:
        return None
    return (f"data: reading {name} needs about {gigabytes(needed)} (every image held in memory as uint8; "
            f"streaming from disk is not implemented) and the machine has {gigabytes(available)} free; use a "
            "smaller data.image_size or fewer images, or pass --force to try anyway")


def _short_of(needed: int) -> int | None:
    """The host's free bytes when `needed` bytes do not fit in them, else None."""
    available = available_bytes(torch.device("cpu"))
    return available if available is not None and needed > available else None


def available_bytes(device: torch.device) -> int | None:
    """Memory free for a run on this device: CUDA's free memory plus what torch has cached but not
    used; elsewhere the machine's available RAM (within a container's limit). None when unknown."""
    if device.type == "cuda":
        free, _ = torch.cuda.mem_get_info(device)
        return free + torch.cuda.memory_reserved(device) - torch.cuda.memory_allocated(device)
    known = [room for room in (_meminfo_available(), _cgroup_room()) if room is not None]
    return min(known) if known else None


def gigabytes(count: int) -> str:
    for unit, size in (("GiB", 2**30), ("MiB", 2**20), ("KiB", 2**10)):
        if count >= size:
            return f"{count / size:.1f} {unit}"
    return f"{count} bytes"


def _meminfo_available() -> int | None:
    """MemAvailable from /proc/meminfo (Linux), else free pages × page size, else None."""
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemAvailable:"):
                return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    try:
        return os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (AttributeError, OSError, ValueError):
        return None


def _cgroup_room() -> int | None:
    """What a container's memory limit leaves (cgroup v2, else v1), or None without a limit."""
    for limit, usage in (("memory.max", "memory.current"),
                         ("memory/memory.limit_in_bytes", "memory/memory.usage_in_bytes")):
        try:
            cap = int(Path("/sys/fs/cgroup", limit).read_text())
            used = int(Path("/sys/fs/cgroup", usage).read_text())
        except (OSError, ValueError):
            continue  # absent, or "max": no limit here
        if cap < 2**60:  # v1 writes a huge number for "no limit"
            return max(0, cap - used)
    return None

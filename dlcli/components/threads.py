"""How many CPU threads torch uses for a run (`train.threads`), and setting them.

torch starts one OpenMP thread per core and assumes they all run at once: each parallel operation waits
at a barrier for its slowest thread. When another process holds a core, one thread waits for the
scheduler at every barrier. Measured on 2 cores (docs/benchmarks.md, benchmark (f); whole `dlcli train
configs/quickstart.yaml` processes, medians): with one other CPU-bound process running, 8.8 s with 2
torch threads against 5.2 s with 1 (1.7×; the hand-written loop: 1.45×); with two, 12.7 s against 7.8 s
(1.6×; the hand loop 2.8×); on a busier machine single runs took 15 s, 40 s and over 150 s with 2
threads. A thread too few costs little: idle, 1 thread took the quickstart 0.97–1.05× the time of 2,
and the widest double-descent MLP (300-300) 1.13×. So `auto` leaves one CPU to everything else on the
machine and shares the rest between the worker processes:

    cpus    = the CPUs this process may run on (os.sched_getaffinity, else os.cpu_count)
    threads = max(1, (cpus − 1) // workers)

It does not look at the current load: the count would then change from one run to the next, and with
it the numbers of a CNN (torch sums convolution weight gradients in an order that depends on the count;
linear models and MLPs compute the same with any count: dlcli.engine.stack.ModelStack.single_threaded).
Given the machine and the number of workers, `auto` is always the same count, so a config and seed always give the same
metrics. On a machine busy with other work, set `train.threads: 1`. An explicit count is used as given.
"""
from __future__ import annotations

import os
from contextlib import contextmanager
from typing import Iterator

import torch


def available_cpus() -> int:
    """The CPUs this process may run on: its affinity set where the system has one, else all of them."""
    try:
        return len(os.sched_getaffinity(0)) or 1
    except (AttributeError, OSError):  # macOS and Windows have no sched_getaffinity
        return os.cpu_count() or 1


def choose_threads(requested: int | str, workers: int = 1) -> int:
    """The torch threads for each of `workers` processes: `requested` if it is a number, else (`auto`)
    the CPUs but one, shared between the workers; at least 1."""
    if requested != "auto":
        if isinstance(requested, bool) or not isinstance(requested, int) or requested < 1:
            raise ValueError(f"threads must be auto or an integer >= 1, got {requested!r}")
        return requested
    if isinstance(workers, bool) or not isinstance(workers, int) or workers < 1:
        raise ValueError(f"workers must be an integer >= 1, got {workers!r}")
    return max(1, (available_cpus() - 1) // workers)


def use_threads(count: int) -> int:
    """Make torch use `count` threads in this process; returns the count it used before. The inter-op
    pool is set too where torch still allows it (only before any parallel work, once per process)."""
    previous = torch.get_num_threads()
    torch.set_num_threads(count)
    try:
        torch.set_num_interop_threads(count)
    except RuntimeError:  # parallel work has started, or it was set already: the pool stays as it is
        pass
    return previous


@contextmanager
def one_thread(when: bool = True) -> Iterator[None]:
    """Run the block on one torch thread when `when`, then give back the count from before."""
    previous = torch.get_num_threads()
    if not when or previous == 1:
        yield
        return
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(previous)


@contextmanager
def threads_for(requested: int | str, workers: int = 1) -> Iterator[int]:
    """Run the block with `choose_threads(requested, workers)` torch threads (yielded), then give back
    the count from before, so that a library call leaves its caller's setting as it was."""
    previous = use_threads(choose_threads(requested, workers))
    try:
        yield torch.get_num_threads()
    finally:
        torch.set_num_threads(previous)

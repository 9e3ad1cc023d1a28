"""Paired timings, A then B in turn, reported as medians and the median of the pair-by-pair ratios
(the machine is shared: a ratio within a pair is steadier than either time): two whole commands
(`compare_pairs`), or a sweep one by one and stacked (`one_by_one_against_stacked`)."""
from __future__ import annotations

import statistics
import subprocess
import tempfile
import time
from pathlib import Path

from dlcli.config.sweep import load_sweep
from dlcli.sweep.runner import run_sweep


def timed_command(command: list[str]) -> float:
    """Seconds of a whole process, its output discarded."""
    started = time.perf_counter()
    subprocess.run(command, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return time.perf_counter() - started


def compare_pairs(label_a: str, command_a: list[str], label_b: str, command_b: list[str], repeats: int,
                  target: str, warm_up: bool = True) -> None:
    """`repeats` pairs of two commands, after one untimed run of each (the file cache; skipped with
    `warm_up=False` where one command takes many minutes)."""
    if warm_up:
        timed_command(command_a), timed_command(command_b)
    pairs = []
    for _ in range(repeats):
        pairs.append((timed_command(command_a), timed_command(command_b)))
        print(f"  {label_a} {pairs[-1][0]:.2f} s, {label_b} {pairs[-1][1]:.2f} s", flush=True)
    report_pairs(pairs, (label_a, label_b), f"target {target}", ratio="ratio A/B")


def timed_sweep(config: Path, grid: list[str], seeds: int, overrides: list[str], vectorize: bool) -> float:
    """Seconds of a whole `run_sweep` (prepare, train, measure, write) into a fresh folder."""
    spec = load_sweep(config, grid, [], seeds, overrides)
    with tempfile.TemporaryDirectory() as out:  # fresh: a sweep skips the points it finds finished
        started = time.perf_counter()
        result = run_sweep(spec, out, vectorize=vectorize)
        seconds = time.perf_counter() - started
        assert not result.failed, result.failed
    return seconds


def one_by_one_against_stacked(config: Path, grid: list[str], seeds: int, overrides: list[str], repeats: int,
                               label: str, target: str) -> None:
    """Warm up (one epoch each way), then `repeats` pairs, printed as they come and summarized."""
    run = lambda vectorize, extra=(): timed_sweep(config, grid, seeds, [*overrides, *extra], vectorize)  # noqa: E731
    run(False, ["train.epochs=1"]), run(True, ["train.epochs=1"])  # allocator, kernels, CUDA context, data cache
    pairs = []
    for _ in range(repeats):
        pairs.append((run(False), run(True)))
        print(f"  one by one {pairs[-1][0]:.2f} s, {label} {pairs[-1][1]:.2f} s", flush=True)
    report_pairs(pairs, ("one by one", label), target)


def report_pairs(pairs: list[tuple[float, float]], labels: tuple[str, str], target: str,
                 ratio: str = "speed-up") -> None:
    width = max(map(len, labels))
    for label, times in zip(labels, ([a for a, _ in pairs], [b for _, b in pairs])):
        print(f"{label:<{width}}: median {statistics.median(times):.2f} s  (min {min(times):.2f}, max {max(times):.2f})")
    ratios = [a / b for a, b in pairs]
    print(f"{ratio}, pair by pair: median {statistics.median(ratios):.2f} (min {min(ratios):.2f}, "
          f"max {max(ratios):.2f}); {target}")

"""Timing two whole commands in turn, A B A B …, so both share the machine's noise; medians and the
ratio pair by pair."""
import statistics
import subprocess
import time


def timed(command: list[str]) -> float:
    started = time.perf_counter()
    subprocess.run(command, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return time.perf_counter() - started


def compare_pairs(label_a: str, command_a: list[str], label_b: str, command_b: list[str], repeats: int,
                  target: str, warm_up: bool = True) -> None:
    if warm_up:  # warm the file cache; skipped where one command takes many minutes
        timed(command_a), timed(command_b)
    pairs = []
    for _ in range(repeats):
        pairs.append((timed(command_a), timed(command_b)))
        print(f"  {label_a} {pairs[-1][0]:.2f} s, {label_b} {pairs[-1][1]:.2f} s", flush=True)
    for label, times in ((label_a, [a for a, _ in pairs]), (label_b, [b for _, b in pairs])):
        print(f"{label:<14}: median {statistics.median(times):.3f} s  (min {min(times):.3f}, max {max(times):.3f})")
    ratios = [a / b for a, b in pairs]
    print(f"ratio A/B, pair by pair: median {statistics.median(ratios):.3f} "
          f"(min {min(ratios):.3f}, max {max(ratios):.3f}); target {target}")

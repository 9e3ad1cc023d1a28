"""Paired timings, A then B in turn, reported as medians and the median of the pair-by-pair ratios
(the machine is shared: a ratio within a pair is steadier than either time)."""
from __future__ import annotations

import statistics


def report_pairs(pairs: list[tuple[float, float]], labels: tuple[str, str], target: str) -> None:
    for label, times in zip(labels, ([a for a, _ in pairs], [b for _, b in pairs])):
        print(f"{label:<11}: median {statistics.median(times):.2f} s  (min {min(times):.2f}, max {max(times):.2f})")
    ratios = [a / b for a, b in pairs]
    print(f"speed-up, pair by pair: median {statistics.median(ratios):.2f} (min {min(ratios):.2f}, "
          f"max {max(ratios):.2f}); {target}")

"""Benchmark (f): torch threads on a loaded machine. `dlcli train configs/quickstart.yaml` and the
hand-written loop doing the same work (benchmarks/hand_loop.py with the quickstart's sizes), each with
2 torch threads and with 1 (OMP_NUM_THREADS, and `train.threads` / `--threads`), and dlcli with
`train.threads: auto` (the count it chose is read back from the run's environment.json): first on the
idle machine, then while other CPU-bound processes (`--load` busy loops, started here and stopped
after) run. Whole processes, the five commands in turn round after round so that they share the noise;
medians, and ratios taken round by round.

Run: python benchmarks/threads_under_load.py [--repeats 3] [--load 1] [--limit 60]
"""
import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
QUICKSTART = HERE.parent / "configs" / "quickstart.yaml"
QUICKSTART_SIZES = ["--hidden", "100,100", "--batch", "32", "--lr", "0.03"]  # configs/quickstart.yaml


def commands(out: str) -> dict[str, tuple[list[str], dict[str, str]]]:
    """label -> (command, environment)."""
    dlcli = [sys.executable, "-m", "dlcli", "train", str(QUICKSTART), "--out", out, "--device", "cpu", "--set"]
    loop = [sys.executable, str(HERE / "hand_loop.py"), "cpu", *QUICKSTART_SIZES, "--threads"]
    found = {}
    for threads in (2, 1):
        environment = {**os.environ, "OMP_NUM_THREADS": str(threads)}
        found[f"dlcli {threads} threads"] = ([*dlcli, f"train.threads={threads}"], environment)
        found[f"loop {threads} threads"] = ([*loop, str(threads)], environment)
    found["dlcli auto"] = ([*dlcli, "train.threads=auto"], dict(os.environ))
    return found


def timed(command: list[str], environment: dict[str, str], limit: float) -> float:
    """Wall seconds of one command; `limit` (a floor, marked with >) when it ran longer and was stopped."""
    started = time.perf_counter()
    try:
        subprocess.run(command, check=True, env=environment, timeout=limit,
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    except subprocess.TimeoutExpired:
        return float("inf")
    return time.perf_counter() - started


def chosen_threads(out: str) -> int:
    """The torch threads of the newest dlcli run under `out` (its environment.json)."""
    newest = max(Path(out).glob("*/*/environment.json"), key=lambda path: path.stat().st_mtime)
    return json.loads(newest.read_text())["torch_threads"]


def measure(repeats: int, limit: float, out: str) -> dict[str, list[float]]:
    times: dict[str, list[float]] = {label: [] for label in commands(out)}
    times["auto chose"] = []
    for _ in range(repeats):
        load = os.getloadavg()[0]  # our own previous runs count in it too
        for label, (command, environment) in commands(out).items():
            times[label].append(timed(command, environment, limit))
        times["auto chose"].append(chosen_threads(out))
        row = ", ".join(f"{label} {values[-1]:.2f}" for label, values in times.items())
        print(f"  (load average {load:.2f}) {row}", flush=True)
    return times


def median(values: list[float], limit: float) -> str:
    middle = statistics.median(values)
    return f"> {limit:.0f} s" if middle == float("inf") else f"{middle:.2f} s"


def ratios(times: dict[str, list[float]], a: str, b: str) -> str:
    pairs = [x / y for x, y in zip(times[a], times[b])]
    return f"{statistics.median(pairs):.2f} ({min(pairs):.2f} – {max(pairs):.2f})"


def report(name: str, times: dict[str, list[float]], limit: float) -> None:
    print(f"{name}:")
    for label, values in times.items():
        if label != "auto chose":
            print(f"  {label:<16} median {median(values, limit)}  (min {min(values):.2f}, max {max(values):.2f})")
    print(f"  auto chose {times['auto chose']} threads")
    for tool in ("dlcli", "loop"):
        print(f"  {tool}: 2 threads / 1 thread, round by round: {ratios(times, f'{tool} 2 threads', f'{tool} 1 threads')}")
    for threads in (2, 1):
        print(f"  dlcli / loop, {threads} thread(s): {ratios(times, f'dlcli {threads} threads', f'loop {threads} threads')}")
    print(f"  dlcli auto / dlcli 1 thread: {ratios(times, 'dlcli auto', 'dlcli 1 threads')}", flush=True)


def busy_loops(count: int) -> list[subprocess.Popen]:
    return [subprocess.Popen([sys.executable, "-c", "while True: pass"]) for _ in range(count)]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--load", type=int, default=1, help="CPU-bound processes running meanwhile")
    parser.add_argument("--limit", type=float, default=60.0, help="seconds after which a run is stopped")
    arguments = parser.parse_args()
    print(f"CPUs: {len(os.sched_getaffinity(0)) if hasattr(os, 'sched_getaffinity') else os.cpu_count()}, "
          f"load average {os.getloadavg()[0]:.2f}", flush=True)
    with tempfile.TemporaryDirectory() as out:
        print("idle machine:", flush=True)
        idle = measure(arguments.repeats, arguments.limit, out)
        load = busy_loops(arguments.load)
        try:
            time.sleep(1.0)
            print(f"with {arguments.load} busy process(es):", flush=True)
            loaded = measure(arguments.repeats, arguments.limit, out)
        finally:
            for process in load:
                process.kill()
                process.wait()
    report("idle", idle, arguments.limit)
    report(f"with {arguments.load} busy process(es)", loaded, arguments.limit)
    for label in idle:
        if label != "auto chose":
            print(f"loaded / idle, {label}: {statistics.median(loaded[label]) / statistics.median(idle[label]):.2f}")


if __name__ == "__main__":
    main()

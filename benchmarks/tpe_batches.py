"""Benchmark (s4): TPE asked in batches of different sizes against random search, on
configs/search_mlp.yaml as shipped (32 trials, 27 epochs, successive halving at epochs 3 and 9),
over sampler seeds 0..9: the chosen trial's validation error (what the search minimizes), its test
error (read once, after), the epochs trained and the time. TPE learns only from the trials told before
each batch; asked in one batch, its trials are its random start.

About 5 minutes on 2 CPU cores.

Run: python benchmarks/tpe_batches.py [--seeds 10] [--batches 16,8,4]
"""
import argparse
import statistics
import tempfile
import time
from pathlib import Path

from dlcli.config.search import load_search
from dlcli.sweep.search import run_search

CONFIG = Path(__file__).resolve().parent.parent / "configs" / "search_mlp.yaml"


def search(method: str, seed: int, batch: int | None) -> tuple[float, float, int, float]:
    plan = load_search(CONFIG, [], [], method=method, trials=32, seed=seed, batch=batch)
    with tempfile.TemporaryDirectory() as out:
        started = time.perf_counter()
        result = run_search(plan, out)
        seconds = time.perf_counter() - started
    return result.best["val_error"], result.best["test_error"], result.epochs, seconds


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--seeds", type=int, default=10)
    parser.add_argument("--batches", default="16,8,4")
    arguments = parser.parse_args()
    settings = [("random", None)] + [("tpe", int(size)) for size in arguments.batches.split(",")]
    print("method, batch: chosen trial's val error / test error (medians over sampler seeds), epochs, seconds")
    for method, batch in settings:
        results = [search(method, seed, batch) for seed in range(arguments.seeds)]
        val, test, epochs, seconds = ([result[k] for result in results] for k in range(4))
        print(f"{method}, batch {batch or 'one'}: val {statistics.median(val):.4f} / test "
              f"{statistics.median(test):.4f}, {statistics.median(epochs):.0f} epochs, "
              f"{statistics.median(seconds):.1f} s", flush=True)
        print(f"  per seed: val {[round(v, 4) for v in val]}\n            test {[round(t, 4) for t in test]}", flush=True)


if __name__ == "__main__":
    main()

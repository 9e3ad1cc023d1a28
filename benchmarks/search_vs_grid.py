"""Benchmark (s1, s2): on configs/search_mlp.yaml (MNIST-1D MLP; lr, momentum, weight decay, dropout,
width), (1) random search with 32 trials against a 32-point grid over the same box (2 values per key, at a
quarter and three quarters of each range, on the key's scale), and (2) the same random trials with
successive halving (--prune asha, eta 3; the first rung at the config's min_epochs, 3, or at
--min-epochs R: rungs at 3 and 9 of 27 epochs, at 1, 3 and 9 with --min-epochs 1, at 1 and 3 of 9 with
--epochs 9 --min-epochs 1) against them trained in full. Every search is chosen on the validation
error; the chosen trial's test error is read once, after. Random searches use sampler seeds 0, 1, 2;
the grid has no sampler, so it runs once.

The seed noise (2) is measured twice: as the spread of full training's choices over the sampler seeds,
and by training each search's chosen trial (halving's and full training's) again with training seeds
0..4 (initial weights, batch order, dropout): the difference of their mean test errors against the
standard deviation of one trial's test error over training seeds.

By default 9 epochs instead of the config's 27 (--epochs 27): about 2 minutes either way on 2 CPU cores.

Run: python benchmarks/search_vs_grid.py [--epochs 9] [--seeds 3] [--min-epochs R]
"""
import argparse
import statistics
import tempfile
import time
from pathlib import Path

from dlcli.analysis.compare import load_runs
from dlcli.config.search import load_search
from dlcli.config.sweep import load_sweep
from dlcli.sweep.runner import run_sweep
from dlcli.sweep.search import run_search

REPO = Path(__file__).resolve().parent.parent
CONFIG = REPO / "configs" / "search_mlp.yaml"
GRID = ["optim.lr=0.0129,0.234", "optim.momentum=0.2375,0.7125", "regularization.weight_decay=1e-5,1e-3",
        "model.dropout=0.125,0.375", "model.hidden=[64,64],[256,256]"]  # 2^5 = 32 points in the search's box


def grid(epochs: int) -> dict:
    sweep = load_sweep(CONFIG, GRID, [], None, [f"train.epochs={epochs}"])
    with tempfile.TemporaryDirectory() as out:
        started = time.perf_counter()
        result = run_sweep(sweep, out)
        seconds = time.perf_counter() - started
        runs = load_runs([result.sweep_dir])
    chosen = runs.loc[runs["val_error"].astype(float).idxmin()]  # chosen on validation
    return {"val": float(chosen["val_error"]), "test": float(chosen["test_error"]), "epochs": len(runs) * epochs,
            "seconds": seconds}


def search(epochs: int, seed: int, prune: str, min_epochs: int | None = None) -> dict:
    plan = load_search(CONFIG, [], [f"train.epochs={epochs}"], method="random", trials=32, seed=seed, prune=prune,
                       min_epochs=min_epochs)
    with tempfile.TemporaryDirectory() as out:
        started = time.perf_counter()
        result = run_search(plan, out)
        seconds = time.perf_counter() - started
        config = (next(Path(out).rglob(f"{result.best['run_id']}/config.yaml"))).read_text()
    return {"val": result.best["val_error"], "test": result.best["test_error"], "epochs": result.epochs,
            "seconds": seconds, "config": config}


def over_training_seeds(config: str, seeds: int = 5) -> list[float]:
    """The test errors of one trial's resolved config trained with training seeds 0..seeds-1 (stacked)."""
    with tempfile.TemporaryDirectory() as out:
        path = Path(out) / "trial.yaml"
        path.write_text(config)
        result = run_sweep(load_sweep(path, seeds=seeds), Path(out) / "runs")
        runs = load_runs([result.sweep_dir])
    return [float(error) for error in runs["test_error"]]


def line(label: str, results: list[dict]) -> str:
    def median(key: str) -> float:
        return statistics.median(result[key] for result in results)

    values = ", ".join(f"{result['val']:.4f}/{result['test']:.4f}" for result in results)
    return (f"{label:<22} val/test of the chosen trial: {values}  (median test {median('test'):.4f}); "
            f"epochs {median('epochs'):.0f}, {median('seconds'):.1f} s")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--epochs", type=int, default=9)
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--min-epochs", type=int, help="the first rung (default: the config's)")
    arguments = parser.parse_args()
    epochs, seeds = arguments.epochs, range(arguments.seeds)
    print(f"configs/search_mlp.yaml, {epochs} epochs per trial, 32 trials or points")
    full = [search(epochs, seed, "none") for seed in seeds]
    halved = [search(epochs, seed, "asha", arguments.min_epochs) for seed in seeds]
    gridded = [grid(epochs)]
    print(line("grid (2^5 points)", gridded))
    print(line("random, in full", full))
    print(line("random, asha", halved))
    spread = statistics.pstdev(result["test"] for result in full)
    print(f"(1) random − grid, chosen trial's test error: median "
          f"{statistics.median(r['test'] for r in full) - gridded[0]['test']:+.4f}; "
          f"best val error: median {statistics.median(r['val'] for r in full) - gridded[0]['val']:+.4f}")
    ratio = statistics.median(h["epochs"] / f["epochs"] for h, f in zip(halved, full))
    gap = statistics.median(h["test"] - f["test"] for h, f in zip(halved, full))
    print(f"(2) asha / full: epochs {ratio:.2f} (target ≤ 0.33); test error of the chosen trial {gap:+.4f} "
          f"(seed noise: std {spread:.4f} over the full searches' choices); time "
          f"{statistics.median(h['seconds'] / f['seconds'] for h, f in zip(halved, full)):.2f}")
    differences, spreads = [], []
    for seed, (h, f) in enumerate(zip(halved, full)):
        h_errors, f_errors = over_training_seeds(h["config"]), over_training_seeds(f["config"])
        differences.append(statistics.mean(h_errors) - statistics.mean(f_errors))
        spreads += [statistics.stdev(h_errors), statistics.stdev(f_errors)]
        print(f"    sampler seed {seed}: over training seeds 0-4, test error of asha's choice "
              f"{statistics.mean(h_errors):.4f} ± {statistics.stdev(h_errors):.4f}, of full training's "
              f"{statistics.mean(f_errors):.4f} ± {statistics.stdev(f_errors):.4f}")
    print(f"(2) over training seeds: asha's choice − full training's, mean test error: median "
          f"{statistics.median(differences):+.4f} (one trial's std over training seeds: median "
          f"{statistics.median(spreads):.4f})")


if __name__ == "__main__":
    main()

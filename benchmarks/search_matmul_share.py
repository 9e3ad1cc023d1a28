"""Benchmark (s3), what bounds it: how much of a dlcli search is matrix products, and what running two
processes on the 2 cores costs those products.

- dlcli's search on configs/search_mlp.yaml (random, halving; by default the config's 27 epochs and
  rungs at 3 and 9) in this process with one torch thread: wall time (median of --repeats), then once
  under torch.profiler: the self time of the matrix products (bmm, baddbmm, mm, addmm: training and
  evaluation) and the number of kernel calls.
- An epoch's matrix products alone (random data, forward and backward, as in
  search_vs_optuna_ray.py --floor) for stacks of the search's shapes, in one process and in two at
  once, one thread each: what sharing the cores (caches, memory, clocks) adds to each product.

From these: for a target wall time T on 2 cores (2T core-seconds), what is left for everything that is
not a matrix product: 2T − the products' time × the two-process factor.

Run: python benchmarks/search_matmul_share.py [--epochs 27] [--min-epochs 3] [--repeats 3] [--target 2.41]
"""
import argparse
import gc
import multiprocessing
import statistics

import torch

import search_vs_optuna_ray as bench

MATMULS = ("aten::bmm", "aten::baddbmm", "aten::mm", "aten::addmm")
SHAPES = [(256, 6), (256, 1), (128, 5), (64, 5)]  # (width, models): the search's stacks, and a lone model


def products_time(queue) -> None:
    torch.set_num_threads(1)
    queue.put([bench.matmul_epoch(width, models, 3200) for width, models in SHAPES])


def products_in(processes: int) -> list[float]:
    """Each shape's matrix products per model and epoch, mean over `processes` run at once."""
    context = multiprocessing.get_context("spawn")
    queue = context.Queue()
    workers = [context.Process(target=products_time, args=(queue,)) for _ in range(processes)]
    for worker in workers:
        worker.start()
    results = [queue.get() for _ in workers]
    for worker in workers:
        worker.join()
    return [statistics.mean(column) for column in zip(*results)]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--epochs", type=int, default=27)
    parser.add_argument("--min-epochs", type=int, default=3)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--target", type=float, default=2.41, help="a wall time on 2 cores, in seconds")
    arguments = parser.parse_args()
    bench.PRUNE["min_epochs"] = arguments.min_epochs
    bench.run_dlcli(4, 1)  # warm-up: imports, the data cache
    gc.freeze()
    walls = [bench.run_dlcli(32, arguments.epochs, 1, 1) for _ in range(arguments.repeats)]
    with torch.profiler.profile(activities=[torch.profiler.ProfilerActivity.CPU]) as profile:
        bench.run_dlcli(32, arguments.epochs, 1, 1)
    events = profile.key_averages()
    products = sum(event.self_cpu_time_total for event in events if event.key in MATMULS) / 1e6
    wall = statistics.median(walls)
    print(f"dlcli search, 1 thread: median {wall:.2f} s; matrix products {products:.2f} s ({products / wall:.0%}); "
          f"{sum(event.count for event in events)} kernel calls (under the profiler)")
    rounds = [(products_in(1), products_in(2)) for _ in range(arguments.repeats)]
    factors = []
    for k, (width, models) in enumerate(SHAPES):
        alone = statistics.median(one[k] for one, _ in rounds)
        shared = statistics.median(two[k] for _, two in rounds)
        factors.append(shared / alone)
        print(f"products of an epoch, {width} wide, stack of {models}: {1000 * alone:.1f} ms a model alone, "
              f"{1000 * shared:.1f} ms with two processes ({shared / alone:.2f}×)")
    factor = statistics.median(factors)
    left = 2 * arguments.target - products * factor
    print(f"{arguments.target:.2f} s on 2 cores is {2 * arguments.target:.2f} core-seconds; the products take "
          f"{products * factor:.2f} of them in two processes ({factor:.2f}×), leaving {left:.2f} for everything else, "
          f"which takes {wall - products:.2f} s in one thread")


if __name__ == "__main__":
    main()

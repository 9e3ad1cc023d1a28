"""Benchmark (s3): the same search three ways, wall time on this machine (2 CPU cores):

- dlcli: `run_search` on configs/search_mlp.yaml, random sampling, successive halving (by default rungs
  at epochs 1 and 3 of 9, eta 3; `--epochs 27 --min-epochs 3`: the config's own, 3 and 9 of 27); each
  batch of trials trains as stacked models.
- Optuna driving a plain PyTorch loop trial by trial (study.optimize, RandomSampler,
  SuccessiveHalvingPruner with the same rungs), the data loaded once.
- Ray Tune with its ASHA scheduler (same rungs), two trials at a time, one CPU and one torch thread each.

Same space (lr, momentum, weight decay, dropout, width of the MNIST-1D MLP), same 32 trials of 9
epochs, same batch size 64 and 20% validation split. Each tool is timed from its call to its answer,
in this process, after one untimed warm-up of dlcli (imports, data cache). The plain loops get the data
already loaded (Ray through its object store, tune.with_parameters), which flatters them; the Ray
timing includes starting Ray, which every Ray Tune user pays.

`--no-prune` trains every trial to the end in dlcli and in the Optuna loop (Ray Tune still uses ASHA,
its way to stop trials). `--small` runs the same with quickstart-sized models (widths 32, 64 or 100; batches of 32), the regime
stacking is for: many small models, many short steps.

dlcli and the Optuna loop each run in three configurations, alternating, and each is credited with its
fastest: 1 torch thread, one per core, and `--workers` processes of one thread each (default: one per
core; 1: none). dlcli's processes are its search's worker processes (`dlcli sweep --workers`, forked,
the survivors regrouped at each rung); the Optuna loop's are forked processes that share the study
through a journal file, Optuna's way to run trials in parallel without a database, the trials split
between them. Ray Tune uses one thread per trial, two trials at a time.

`--floor` measures, per width, what an epoch of one model costs: in the plain loop, in a dlcli stack
of 11 (per model), and in the matrix products alone of that stack (forward and backward, random data:
what no implementation on this CPU avoids). The last bounds how much faster than the plain loop any
stacked search can be.

`--device cuda` runs dlcli and the plain loop on the GPU (data and models there; Ray Tune stays on the
CPU, so skip it with --skip-ray); `--floor` is for the CPU.

Run: python benchmarks/search_vs_optuna_ray.py [--trials 32] [--epochs 9] [--min-epochs 1] [--repeats 3] [--small]
         [--no-prune] [--skip-ray] [--floor] [--device cpu|cuda] [--workers N]
"""
import argparse
import gc
import multiprocessing
import os
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from torch import nn

REPO = Path(__file__).resolve().parent.parent
CONFIG = REPO / "configs" / "search_mlp.yaml"
WIDTHS = {"64": [64, 64], "128": [128, 128], "256": [256, 256]}  # search_mlp.yaml's; --small replaces them
BATCH = {"size": 64}  # search_mlp.yaml's; --small: 32
PRUNE = {"dlcli": "asha", "min_epochs": 1}  # --no-prune: "none", and no pruner in the Optuna loop; --min-epochs
DEVICE = {"name": "cpu"}  # --device
# dlcli and the Optuna loop each run as (threads, processes) in every round, each credited with its best:
# one thread, one per core, and (--workers, default one per core) processes of one thread each.
CONFIGURATIONS = sorted({(1, 1), (os.cpu_count() or 1, 1)})


def mnist1d_splits(seed: int = 0) -> dict:
    """MNIST-1D standardized, 20% of the training set held out for validation."""
    from mnist1d.data import get_dataset_args, make_dataset

    data = make_dataset(get_dataset_args())
    x, y = data["x"].astype(np.float32), data["y"].astype(np.int64)
    x_test, y_test = data["x_test"].astype(np.float32), data["y_test"].astype(np.int64)
    order = np.random.default_rng(seed).permutation(len(x))
    val, train = order[: len(x) // 5], order[len(x) // 5:]
    mean, std = x[train].mean(0), x[train].std(0)
    tensors = lambda a: torch.tensor((a - mean) / std, device=DEVICE["name"])  # noqa: E731
    labels = lambda a: torch.tensor(a, device=DEVICE["name"])  # noqa: E731
    return {"x": tensors(x[train]), "y": labels(y[train]), "x_val": tensors(x[val]), "y_val": labels(y[val]),
            "x_test": tensors(x_test), "y_test": labels(y_test)}


def train_trial(params: dict, data: dict, epochs: int, report) -> float:
    """A plain loop: MLP 40-h-h-10 with dropout, SGD with momentum and weight decay, batches of 64.
    `report(epoch, val_error)` returns True to stop (pruned)."""
    torch.manual_seed(0)
    layers, width_in = [], 40
    for width in WIDTHS[params["width"]]:
        layers += [nn.Linear(width_in, width), nn.ReLU(), nn.Dropout(params["dropout"])]
        width_in = width
    model = nn.Sequential(*layers, nn.Linear(width_in, 10)).to(data["x"].device)
    optimizer = torch.optim.SGD(model.parameters(), lr=params["lr"], momentum=params["momentum"],
                                weight_decay=params["weight_decay"])
    loss_fn, generator = nn.CrossEntropyLoss(), torch.Generator().manual_seed(0)
    val_error = 1.0
    for epoch in range(1, epochs + 1):
        model.train()
        for indices in torch.randperm(len(data["x"]), generator=generator).to(data["x"].device).split(BATCH["size"]):
            loss = loss_fn(model(data["x"][indices]), data["y"][indices])
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
        model.eval()
        with torch.inference_mode():
            val_error = (model(data["x_val"]).argmax(1) != data["y_val"]).float().mean().item()
        if not np.isfinite(val_error) or report(epoch, val_error):
            break
    return val_error


def run_dlcli(trials: int, epochs: int, threads: int | str = 1, workers: int = 1) -> float:
    from dlcli.config.search import load_search
    from dlcli.sweep.search import run_search

    widths = ",".join(f"[{width},{width}]" for width in WIDTHS)
    plan = load_search(CONFIG, [f"model.hidden=choice({widths})"],
                       [f"train.epochs={epochs}", f"optim.batch_size={BATCH['size']}", f"train.threads={threads}",
                        f"device={DEVICE['name']}"],
                       method="random", trials=trials, prune=PRUNE["dlcli"], min_epochs=PRUNE["min_epochs"])
    with tempfile.TemporaryDirectory() as out:
        started = time.perf_counter()
        run_search(plan, out, workers=workers)
        return time.perf_counter() - started


def run_optuna(trials: int, epochs: int, data: dict, threads: int = 1, workers: int = 1) -> float:
    """Optuna's study.optimize on the plain loop, in this process; with `workers` > 1 in that many forked
    processes of one thread each, sharing the study through a journal file (Optuna's way to run trials
    in parallel without a database server), the trials split between them."""
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    started = time.perf_counter()
    if workers == 1:
        optimize_trials(trials, epochs, data, threads, None, 0)
        return time.perf_counter() - started
    with tempfile.TemporaryDirectory() as folder:
        context = multiprocessing.get_context("fork")
        journal = str(Path(folder) / "journal.log")
        optuna.create_study(study_name="bench", storage=optuna_journal(journal))
        shares = [trials // workers + (k < trials % workers) for k in range(workers)]
        processes = [context.Process(target=optimize_trials, args=(share, epochs, data, 1, journal, k))
                     for k, share in enumerate(shares)]
        for process in processes:
            process.start()
        for process in processes:
            process.join()
    return time.perf_counter() - started


def optuna_journal(path: str):
    import optuna
    from optuna.storages.journal import JournalFileBackend

    return optuna.storages.JournalStorage(JournalFileBackend(path))


def optimize_trials(trials: int, epochs: int, data: dict, threads: int, journal: str | None, seed: int) -> None:
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    torch.set_num_threads(threads)

    def objective(trial):
        params = {"lr": trial.suggest_float("lr", 0.003, 1, log=True),
                  "momentum": trial.suggest_float("momentum", 0, 0.95),
                  "weight_decay": trial.suggest_float("weight_decay", 1e-6, 0.01, log=True),
                  "dropout": trial.suggest_float("dropout", 0, 0.5),
                  "width": trial.suggest_categorical("width", list(WIDTHS))}

        def report(epoch, value):
            trial.report(value, epoch)
            if PRUNE["dlcli"] == "asha" and trial.should_prune():
                raise optuna.TrialPruned()
            return False

        return train_trial(params, data, epochs, report)

    pruner = optuna.pruners.SuccessiveHalvingPruner(min_resource=PRUNE["min_epochs"], reduction_factor=3)
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=seed), pruner=pruner,
                                **({"study_name": "bench", "storage": optuna_journal(journal),
                                    "load_if_exists": True} if journal else {}))
    study.optimize(objective, n_trials=trials)


def ray_trainable(config, data):
    from ray import tune

    torch.set_num_threads(1)
    train_trial(config, data, config["epochs"], lambda epoch, value: tune.report({"val_error": value}) and False)


def run_ray(trials: int, epochs: int, data: dict) -> float:
    import ray
    from ray import tune
    from ray.tune.schedulers import ASHAScheduler

    started = time.perf_counter()
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False, configure_logging=False)
    space = {"lr": tune.loguniform(0.003, 1), "momentum": tune.uniform(0, 0.95),
             "weight_decay": tune.loguniform(1e-6, 0.01), "dropout": tune.uniform(0, 0.5),
             "width": tune.choice(list(WIDTHS)), "epochs": epochs}
    scheduler = ASHAScheduler(max_t=epochs, grace_period=PRUNE["min_epochs"], reduction_factor=3)
    with tempfile.TemporaryDirectory() as storage:
        trainable = tune.with_resources(tune.with_parameters(ray_trainable, data=data), {"cpu": 1})
        tuner = tune.Tuner(trainable, param_space=space,
                           tune_config=tune.TuneConfig(metric="val_error", mode="min", scheduler=scheduler,
                                                       num_samples=trials),
                           run_config=tune.RunConfig(storage_path=storage, verbose=0))
        tuner.fit()
    seconds = time.perf_counter() - started
    ray.shutdown()
    return seconds


def matmul_epoch(width: int, models: int, samples: int) -> float:
    """Seconds per model for one epoch of the stack's matrix products alone (forward a·Wᵀ, backward
    g·W and aᵀ·g for each layer, the first layer's input gradient excepted), median of 5."""
    layers = [(40, width), (width, width), (width, 10)]
    tensors = [(torch.randn(models, BATCH["size"], n_in), torch.randn(models, n_out, n_in),
                torch.randn(models, BATCH["size"], n_out)) for n_in, n_out in layers]
    steps, times = samples // BATCH["size"], []
    for _ in range(5):
        started = time.perf_counter()
        for _ in range(steps):
            for k, (a, weight, grad) in enumerate(tensors):
                torch.bmm(a, weight.transpose(1, 2))
                torch.bmm(a.transpose(1, 2), grad)
                if k:
                    torch.bmm(grad, weight)
        times.append((time.perf_counter() - started) / models)
    return statistics.median(times)


def floor(data: dict, threads: int) -> None:
    """Per width: a plain-loop epoch, a dlcli stacked epoch per model, and the matmul floor per model."""
    from dlcli.config.search import load_search
    from dlcli.engine import epoch as epoch_module, loop

    torch.set_num_threads(threads)
    stacked: list[float] = []
    train_epoch = epoch_module.train_epoch

    def timed(*args):
        started = time.perf_counter()
        result = train_epoch(*args)
        stacked.append((time.perf_counter() - started) / len(args[2]))
        return result

    loop.train_epoch = timed
    samples = len(data["x"])
    params = {"lr": 0.05, "momentum": 0.9, "weight_decay": 1e-4, "dropout": 0.2}
    for name, widths in WIDTHS.items():
        plain = []
        for _ in range(3):
            started = time.perf_counter()
            train_trial({**params, "width": name}, data, 2, lambda epoch, value: False)
            plain.append((time.perf_counter() - started) / 2)
        stacked.clear()
        plan = load_search(CONFIG, [f"model.hidden=choice({widths})"],  # one width: one stack
                           ["train.epochs=3", f"optim.batch_size={BATCH['size']}",
                            f"train.threads={threads}", "model.dropout=0.2"], method="random", trials=11, prune="none")
        from dlcli.sweep.search import run_search
        with tempfile.TemporaryDirectory() as out:
            run_search(plan, out)
        print(f"width {name}: plain loop {1000 * statistics.median(plain):.1f} ms an epoch; dlcli, stack of 11: "
              f"{1000 * statistics.median(stacked):.1f} ms a model; its matrix products alone: "
              f"{1000 * matmul_epoch(int(name), 11, samples):.1f} ms a model")
    loop.train_epoch = train_epoch


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--trials", type=int, default=32)
    parser.add_argument("--epochs", type=int, default=9)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--skip-ray", action="store_true")
    parser.add_argument("--small", action="store_true")
    parser.add_argument("--no-prune", action="store_true")
    parser.add_argument("--floor", action="store_true")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--min-epochs", type=int, default=1, help="the first rung, for every tool")
    parser.add_argument("--workers", type=int, default=os.cpu_count() or 1,
                        help="processes of one thread for dlcli (--workers) and the Optuna loop; 1: none")
    arguments = parser.parse_args()
    if arguments.workers > 1:
        CONFIGURATIONS.append((1, arguments.workers))
    PRUNE["min_epochs"] = arguments.min_epochs
    DEVICE["name"] = arguments.device
    if arguments.floor and arguments.device != "cpu":
        parser.error("--floor measures the CPU")
    if arguments.no_prune:
        PRUNE["dlcli"] = "none"
    if arguments.small:
        WIDTHS.clear()
        WIDTHS.update({"32": [32, 32], "64": [64, 64], "100": [100, 100]})
        BATCH["size"] = 32
    trials, epochs = arguments.trials, arguments.epochs
    print(f"{trials} random trials of {epochs} epochs, widths {', '.join(WIDTHS)}, batches of {BATCH['size']}, "
          f"successive halving (first rung {PRUNE['min_epochs']}, eta 3): {PRUNE['dlcli']}, {os.cpu_count()} CPUs, "
          f"device {DEVICE['name']}")
    run_dlcli(4, 1)  # warm-up: imports, the data cache
    data = mnist1d_splits()
    gc.freeze()  # what is alive now stays out of full garbage collections, for every tool (as dlcli's commands do)
    if arguments.floor:
        return floor(data, os.cpu_count() or 1)
    times = {configuration(tool, threads, workers): [] for tool in ("dlcli", "optuna + loop")
             for threads, workers in CONFIGURATIONS}
    times["ray tune + asha"] = []
    for _ in range(arguments.repeats):
        for threads, workers in CONFIGURATIONS:
            times[configuration("dlcli", threads, workers)].append(run_dlcli(trials, epochs, threads, workers))
            times[configuration("optuna + loop", threads, workers)].append(
                run_optuna(trials, epochs, data, threads, workers))
        if not arguments.skip_ray:
            times["ray tune + asha"].append(run_ray(trials, epochs, data))
        print("  " + ", ".join(f"{name} {values[-1]:.1f} s" for name, values in times.items() if values), flush=True)
    medians = {name: statistics.median(values) for name, values in times.items() if values}
    for name, median in medians.items():
        print(f"{name:<28}: median {median:.2f} s")
    dlcli = min(median for name, median in medians.items() if name.startswith("dlcli"))
    faster = min(median for name, median in medians.items() if not name.startswith("dlcli"))
    print(f"dlcli (its best configuration) against the faster of the others (theirs): {faster / dlcli:.2f}× faster "
          "(target ≥ 3)")


def configuration(tool: str, threads: int, workers: int) -> str:
    return f"{tool}, {workers} processes" if workers > 1 else f"{tool}, {threads} thread(s)"


if __name__ == "__main__":
    main()

"""Searches: sampling within the space, successive halving through the stack, selection on the
validation split only, stacked trials equal to one-by-one trials, resuming after kill -9, compare."""
from __future__ import annotations

import io
import json
import math
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import optuna
import pytest

from conftest import (WIDE, assert_same_sweep, invoke, line_with, metrics_without_seconds, read_csv_rows, succeeded,
                      text, tiny_config, user_error, without, write_yaml)
from dlcli.analysis.compare import load_runs, read_curves
from dlcli.analysis.curves import measured_splits
from dlcli.config.search import load_search
from dlcli.sweep.search import run_search
from dlcli.sweep.trials import ask, open_study, tell

LR_SPACE = ["--grid", "optim.lr=loguniform(1e-4,0.5)"]


def searchable(name: str = "tiny", epochs: int = 9, **train) -> dict:
    config = tiny_config(name=name)
    config["data"]["n_train"] = 200
    config["train"] = {"epochs": epochs, "val_fraction": 0.25, **train}
    return config


def page_figure(page: Path, element: str) -> dict:
    """One chart's plotly JSON from a report page."""
    found = re.search(rf'<script type="application/json" id="{element}"[^>]*>(.*?)</script>',
                      page.read_text(encoding="utf-8"), flags=re.S)
    return json.loads(found.group(1))


def trials_of(sweep_dir: Path) -> list[dict[str, str]]:
    return read_csv_rows(sweep_dir / "runs.csv")[1]


def study_states(sweep_dir: Path) -> dict[int, str]:
    backend = optuna.storages.journal.JournalFileBackend(str(sweep_dir / "search.journal"))
    study = optuna.load_study(study_name="search", storage=optuna.storages.JournalStorage(backend))
    return {trial.number: trial.state.name for trial in study.get_trials()}


# ---- sampling ------------------------------------------------------------------------------------


@pytest.mark.parametrize("method", ["random", "tpe", "qmc"])
def test_samples_lie_within_the_bounds_on_their_scales_and_choices(tmp_path, method):
    config = write_yaml(tmp_path, searchable())
    search = load_search(config, ["optim.lr=loguniform(1e-4,1)", "model.dropout=uniform(0,0.5)",
                                  "optim.batch_size=choice(16,32,64)", "model.hidden=choice([64],[256,256])"],
                         method=method, seed=3)
    study, _ = open_study(tmp_path)
    points = []
    for _ in range(6):  # batches of 5; each trial told a value, so TPE runs past its random start-up
        batch = ask(study, search.settings, search.space, 5)
        for trial in batch:
            point = search.point(trial.params)
            points.append(point)
            tell(study, [trial.number], {"status": "completed", "val_error": point["optim.lr"]}, "val_error")
    lrs = [point["optim.lr"] for point in points]
    assert all(1e-4 <= lr <= 1 for lr in lrs)
    # On a log scale about half the draws lie below 1e-2; spread evenly, 1%.
    assert sum(lr < 1e-2 for lr in lrs) >= 8, sorted(lrs)
    assert all(0 <= point["model.dropout"] <= 0.5 for point in points)
    assert {point["optim.batch_size"] for point in points} <= {16, 32, 64}
    assert {tuple(point["model.hidden"]) for point in points} == {(64,), (256, 256)}
    assert len({json.dumps(point) for point in points}) == len(points)
    if method == "tpe":  # told that a small lr is better, TPE's later trials lean there
        assert sorted(lrs[-10:])[5] < sorted(lrs[:10])[5]


@pytest.mark.parametrize("method", ["random", "tpe", "qmc"])
def test_every_method_takes_any_seed_as_its_value_modulo_2_to_the_32(tmp_path, method):
    """Optuna's samplers take seeds of 32 bits (QMC refuses others); a search's seed is any integer."""
    config = write_yaml(tmp_path, searchable())
    points = []
    for seed in (3, 3 + 2**32, 3 - 2**32):
        search = load_search(config, ["optim.lr=loguniform(1e-4,1)"], method=method, seed=seed)
        (tmp_path / str(seed)).mkdir()
        study, _ = open_study(tmp_path / str(seed))
        points.append([search.point(trial.params) for trial in ask(study, search.settings, search.space, 4)])
    assert points[0] == points[1] == points[2]


# ---- successive halving --------------------------------------------------------------------------


@pytest.fixture(scope="module")
def halving(tmp_path_factory):
    """Nine trials of lr (1e-4 to 0.5) on an easy problem, 9 epochs, halving at epochs 1 and 3 by
    val_loss: after one epoch, a larger lr has the lower loss."""
    folder = tmp_path_factory.mktemp("halving")
    config = write_yaml(folder, searchable())
    out = folder / "out"
    stdout = succeeded(invoke("sweep", config, "--method", "random", "--trials", "9", *LR_SPACE, "--prune", "asha",
                              "--metric", "val_loss", "--out", out))
    return out / "tiny", stdout


def test_halving_keeps_the_best_trials_and_records_the_others_as_pruned(halving):
    sweep_dir, stdout = halving
    rows = sorted(trials_of(sweep_dir), key=lambda row: -float(row["optim.lr"]))
    assert [row["status"] for row in rows] == ["completed"] + ["pruned"] * 8
    assert [int(row["epochs_run"]) for row in rows] == [9, 3, 3] + [1] * 6  # rungs at 1 and 3 keep 1/3
    for row in rows[1:]:
        summary = json.loads((sweep_dir / row["run_id"] / "summary.json").read_text())
        assert summary["status"] == "pruned" and summary["epochs_run"] == int(row["epochs_run"])
        assert "pruned at epoch" in row["message"]
        logged = (sweep_dir / row["run_id"] / "metrics.csv").read_text().splitlines()
        assert len(logged) == 1 + 1 + summary["epochs_run"]  # the header, epoch 0, each epoch trained
    states = study_states(sweep_dir)
    assert {states[int(row["trial"])] for row in rows[1:]} == {"PRUNED"}
    assert states[int(rows[0]["trial"])] == "COMPLETE"
    assert "epochs trained: 21 of 81" in stdout
    line_with(stdout.splitlines(), f"best trial {rows[0]['trial']}", "val_loss")


def test_the_result_points_to_the_chosen_trials_config_to_train_it_over_seeds(halving, tmp_path):
    sweep_dir, stdout = halving
    chosen = min((row for row in trials_of(sweep_dir) if row["status"] == "completed"),
                 key=lambda row: float(row["val_loss"]))
    hint = line_with(" ".join(stdout.split()).split("sweep directory"), "--seeds 5")
    config = Path(re.search(r"dlcli sweep (\S+) --seeds 5", hint).group(1))
    assert config == sweep_dir / chosen["run_id"] / "config.yaml" and config.is_file()
    lines = succeeded(invoke("sweep", config, "--seeds", "2", "--out", tmp_path / "again")).splitlines()
    line_with(lines, "2 runs: 2 completed")


def test_the_chosen_trials_line_names_every_sampled_key_dotted_or_not(tmp_path):
    config = write_yaml(tmp_path, searchable(epochs=1))
    stdout = succeeded(invoke("sweep", config, "--method", "random", "--trials", "3", "--grid", "seed=intuniform(0,100)",
                              *LR_SPACE, "--out", tmp_path / "out"))
    chosen = next(row for row in trials_of(tmp_path / "out" / "tiny") if row["trial"] == re.search(
        r"best trial (\d+)", stdout).group(1))
    line_with(stdout.splitlines(), f"seed={chosen['seed']}", f"optim.lr={float(chosen['optim.lr']):g}")


def test_pruned_trials_cleaned_away_keep_their_rows_and_are_never_trained_again(tmp_path):
    """`dlcli clean --status pruned` frees their folders; runs.csv keeps each one's outcome, before and
    after the search runs again (then read from the journal: where it stopped, and its metric there)."""
    config = write_yaml(tmp_path, searchable(epochs=4))
    search = ["sweep", config, "--method", "random", "--trials", "9", *LR_SPACE, "--prune", "asha",
              "--out", tmp_path / "out"]
    succeeded(invoke(*search))
    sweep_dir = tmp_path / "out" / "tiny"
    before = trials_of(sweep_dir)
    pruned = [row for row in before if row["status"] == "pruned"]
    assert pruned  # the premise
    succeeded(invoke("clean", sweep_dir, "--status", "pruned"))
    assert not any((sweep_dir / row["run_id"]).exists() for row in pruned)
    assert trials_of(sweep_dir) == before
    assert "(9 already done" in succeeded(invoke(*search))
    after = {row["trial"]: row for row in trials_of(sweep_dir)}
    for row in pruned:
        again = after[row["trial"]]
        assert again["status"] == "pruned" and again["epochs_run"] == row["epochs_run"]
        assert float(again["val_error"]) == pytest.approx(float(row["val_error"]))

    succeeded(invoke("clean", sweep_dir, "--status", "completed"))  # every folder gone: the journal alone
    output = succeeded(invoke(*search))
    assert "epochs trained: " + str(sum(int(row["epochs_run"]) for row in before)) in output
    assert "--seeds 5" not in output  # no folder left to train again over seeds
    for row in before:
        again = {row["trial"]: row for row in trials_of(sweep_dir)}[row["trial"]]
        assert (again["status"], again["epochs_run"]) == (row["status"], row["epochs_run"])


def test_compare_on_several_searches_puts_each_ones_choice_side_by_side(tmp_path):
    """Two sampler seeds of one search: a row each with its chosen trial (on validation) and that
    trial's test error, as in each one's runs.csv; --plot overlays their best so far."""
    import pandas as pd

    config = write_yaml(tmp_path, searchable(epochs=3))
    folders = []
    for seed in ("0", "1"):
        out = tmp_path / f"seed{seed}"
        succeeded(invoke("sweep", config, "--method", "random", "--trials", "6", "--seed", seed, *LR_SPACE,
                         "--prune", "asha", "--out", out))
        folders.append(out / "tiny")
    table = pd.read_csv(io.StringIO(succeeded(invoke("compare", *folders, "--format", "csv"))))
    assert table["search"].tolist() == [str(folder) for folder in folders]
    assert table["sampler_seed"].tolist() == [0, 1] and table["trials"].tolist() == [6, 6]
    for folder, (_, row) in zip(folders, table.iterrows()):
        done = [trial for trial in trials_of(folder) if trial["status"] == "completed"]
        chosen = min(done, key=lambda trial: (float(trial["val_error"]), int(trial["trial"])))
        assert row["chosen"] == int(chosen["trial"]) and row["chosen_on"] == "val_error"
        assert row["chosen_value"] == pytest.approx(float(chosen["val_error"]))
        assert row["test_error"] == pytest.approx(float(chosen["test_error"]))
        assert row["epochs"] == sum(int(trial["epochs_run"]) for trial in trials_of(folder))
    figure = tmp_path / "searches.png"
    lines = succeeded(invoke("compare", *folders, "--plot", figure)).splitlines()
    for row in table.itertuples():
        line_with(lines, f"★ {row.chosen}", f"{row.test_error:.4f}")
    assert figure.stat().st_size > 10_000


def test_a_pivot_over_trials_says_how_the_runs_that_did_not_complete_ended(tmp_path):
    """Pruned trials are not diverged ones: the pivot's csv and the report's heatmap name the status."""
    import pandas as pd

    out = tmp_path / "out"
    succeeded(invoke("sweep", write_yaml(tmp_path, searchable(epochs=3)), "--method", "random", "--trials", "12",
                     "--grid", "optim.lr=choice(0.001,0.05,0.3)", "--grid", "model.hidden=choice([4],[16])",
                     "--prune", "asha", "--out", out))
    rows = trials_of(out / "tiny")
    assert {row["status"] for row in rows} == {"completed", "pruned"}  # the premise
    table = pd.read_csv(io.StringIO(succeeded(invoke("compare", out / "tiny", "--pivot", "optim.lr,model.hidden",
                                                     "--format", "csv"))))
    cells = {str(value) for column in table.columns[1:] for value in table[column]}
    assert "pruned" in cells and "diverged" not in cells
    succeeded(invoke("report", out, "-o", tmp_path / "all.html"))  # the root: a grid's page, with its heatmap
    heatmap = page_figure(tmp_path / "all.html", "figure-heatmap")["data"][0]
    labels = {text for row in heatmap["text"] for text in row}
    assert "pruned" in labels and "diverged" not in labels


def test_the_dry_run_says_how_many_epochs_halving_trains_and_the_search_trains_them(halving, tmp_path):
    sweep_dir, stdout = halving
    options = [write_yaml(tmp_path, searchable()), "--method", "random", "--trials", "9", *LR_SPACE, "--prune", "asha",
               "--metric", "val_loss", "--out", tmp_path / "dry", "--dry-run"]
    planned = line_with(succeeded(invoke("sweep", *options)).splitlines(), "halving trains", "one batch of 9")
    trained = line_with(stdout.splitlines(), "epochs trained:")
    assert re.search(r"trains (\d+) epochs", planned).group(1) == re.search(r"trained: (\d+) of", trained).group(1)
    assert "(of 81 without pruning)" in planned and "of 81 without pruning" in trained
    batches = line_with(succeeded(invoke("sweep", *options, "--batch", "4")).splitlines(), "halving trains about")
    assert "3 batches of up to 4" in batches and not (tmp_path / "dry").exists()


def test_compare_on_a_search_marks_the_chosen_trial_and_plots_the_best_so_far(halving, tmp_path):
    sweep_dir, _ = halving
    best = min((row for row in trials_of(sweep_dir) if row["status"] == "completed"),
               key=lambda row: float(row["val_loss"]))
    figure = tmp_path / "best.png"
    lines = succeeded(invoke("compare", sweep_dir, "--plot", figure)).splitlines()
    line_with(lines, f"★ {best['trial']} ", "completed")
    line_with(lines, f"★ trial {best['trial']}", "val_loss", "test error")
    assert figure.stat().st_size > 10_000
    table = json.loads(succeeded(invoke("compare", sweep_dir, "--format", "json")))
    assert [row["trial"] for row in table] == list(range(9))
    so_far = [row["best_so_far"] for row in table]
    assert all(b <= a for a, b in zip(so_far, so_far[1:]) if a is not None and b is not None)
    assert [row["trial"] for row in table if row["best"]] == [int(best["trial"])]
    line_with(succeeded(invoke("runs", sweep_dir.parent)).splitlines(), "pruned")



def test_compare_on_a_search_keeps_the_trials_where_holds_sorted_and_their_best_so_far(halving, tmp_path):
    sweep_dir, _ = halving
    whole = {row["trial"]: row for row in json.loads(succeeded(invoke("compare", sweep_dir, "--format", "json")))}
    options = ["--where", "status==pruned", "--sort", "-val_loss"]
    kept = json.loads(succeeded(invoke("compare", sweep_dir, *options, "--format", "json")))
    pruned = [row for row in whole.values() if row["status"] == "pruned"]
    assert 0 < len(kept) == len(pruned) < len(whole)
    assert [row["val_loss"] for row in kept] == sorted((row["val_loss"] for row in pruned), reverse=True)
    assert all(row["best_so_far"] == whole[row["trial"]]["best_so_far"] for row in kept)  # the whole search's
    lines = succeeded(invoke("compare", sweep_dir, *options)).splitlines()
    line_with(lines, f"{len(kept)} of {len(whole)} trials shown")
    assert [int(line.replace("│", " ").split()[0]) for line in lines if " pruned " in line] == [row["trial"] for row in kept]
    line_with(lines, "★ trial")  # the chosen trial is named even when the filter hides its row
    user_error(invoke("compare", sweep_dir, "--where", "status==failed"), tmp_path / "nothing")


FIVE_KEYS = ["--grid", "optim.lr=loguniform(1e-4,0.5)", "--grid", "optim.momentum=uniform(0,0.9)",
             "--grid", "regularization.weight_decay=loguniform(1e-6,0.01)", "--grid", "model.dropout=uniform(0,0.5)",
             "--grid", "model.hidden=choice([8,8],[16,16])"]


def test_compare_on_a_search_fits_every_trial_whole_into_the_terminal(tmp_path, monkeypatch):
    """A column per key where the terminal is wide enough, else each trial's `name=value` pairs wrapped in
    one column: either way no line is wider than the terminal, and no value is cut."""
    from dlcli.report.console import console

    out = tmp_path / "out"
    succeeded(invoke("sweep", write_yaml(tmp_path, searchable(epochs=1)), "--method", "random", "--trials", "4",
                     *FIVE_KEYS, "--out", out))
    rows = trials_of(out / "tiny")
    for width, one_column in [(80, True), (200, False)]:
        monkeypatch.setattr(console, "width", width)
        lines = succeeded(invoke("compare", out / "tiny")).splitlines()
        lines = lines[:lines.index(line_with(lines, "★ trial"))]  # the table; the lines below may wrap
        assert max(map(len, lines)) <= width and not any("…" in line for line in lines)
        assert ("weight_decay=" in "\n".join(lines)) == one_column  # else a column headed weight_decay
        for row in rows:
            line_with(lines, f" {row['trial']} ", row["status"])
            for key in ("optim.lr", "optim.momentum", "regularization.weight_decay", "model.dropout"):
                assert f"{float(row[key]):.3g}" in "\n".join(lines)



def test_curves_of_a_search_show_the_validation_error_it_measured_every_epoch(tmp_path, monkeypatch):
    """With `train.eval_splits: val` train and test are measured at the last epoch alone: --curves shows
    the validation error per epoch, and at 80 columns the long labels wrap while every number stays whole.
    Each curve is labelled by its trial, the chosen one starred, and --where picks trials by number."""
    from dlcli.report.console import console

    out = tmp_path / "out"
    succeeded(invoke("sweep", write_yaml(tmp_path, searchable(epochs=6, eval_splits="val")), "--method", "random",
                     "--trials", "3", *FIVE_KEYS, "--out", out))
    monkeypatch.setattr(console, "width", 80)
    lines = succeeded(invoke("compare", out / "tiny", "--curves")).splitlines()
    assert max(map(len, lines)) <= 80 and not any("…" in line for line in lines)
    line_with(lines, "validation error per epoch")
    header = line_with(lines, "run", "epoch 0", "epoch 6")
    assert len(header.split("epoch")) - 1 > 2  # more epochs than the first and the last
    rows = trials_of(out / "tiny")
    chosen = min(rows, key=lambda row: float(row["val_error"]))  # every trial trained to the end
    for row in rows:
        label = f"{'★ ' if row is chosen else ''}trial {row['trial']}: hidden="
        assert line_with(lines, label).split()[-1] == f"{float(row['val_error']):.4f}"
    assert sum("★" in line for line in lines) == 1
    picked = succeeded(invoke("compare", out / "tiny", "--curves", "--where", f"trial=={chosen['trial']}"))
    assert f"★ trial {chosen['trial']}" in picked and picked.count("trial ") == 1
    curves = read_curves(load_runs([out / "tiny"]))
    assert measured_splits(curves) == ["val"]  # what --plot draws too
    assert measured_splits(curves.fillna({"train_error": 0.5, "test_error": 0.5})) == ["train", "test"]


# ---- selection on validation ---------------------------------------------------------------------


def test_the_choice_is_the_same_when_every_test_metric_is_nan(tmp_path, monkeypatch):
    """TPE and halving both steer by the validation metric alone: with the test split's metrics made
    NaN, every trial, every pruning and the chosen trial stay the same."""
    config = write_yaml(tmp_path, searchable(epochs=4))
    arguments = ["optim.lr=loguniform(1e-4,0.5)", "model.dropout=uniform(0,0.3)"]
    options = dict(method="tpe", trials=12, batch=4, prune="asha", seed=1)
    honest = run_search(load_search(config, arguments, **options), tmp_path / "honest")

    from dlcli.engine import records

    measure = records.measure

    def without_test(*args, **kwargs):
        return [None if values is None else {**values, "test_loss": math.nan, "test_error": math.nan}
                for values in measure(*args, **kwargs)]

    monkeypatch.setattr(records, "measure", without_test)
    blind = run_search(load_search(config, arguments, **options), tmp_path / "blind")
    assert all(row["test_error"] is None for row in blind.rows)  # the test metrics were NaN indeed
    assert blind.best["trial"] == honest.best["trial"]
    test_columns = ("test_loss", "test_error", "gap", "best_test_error", "best_epoch", "seconds")
    assert without(blind.rows, *test_columns) == without(honest.rows, *test_columns)
    assert {row["status"] for row in honest.rows} == {"completed", "pruned"}


# ---- stacks --------------------------------------------------------------------------------------


def test_stacked_trials_equal_one_by_one_trials(tmp_path):
    config = write_yaml(tmp_path, searchable(epochs=3))
    search = ["sweep", config, "--method", "random", "--trials", "6", "--batch", "3", *LR_SPACE,
              "--grid", "model.dropout=uniform(0,0.3)"]
    stacked = succeeded(invoke(*search, "--out", tmp_path / "stacked"))
    assert "train as 1 stacked model" in stacked
    succeeded(invoke(*search, "--no-vectorize", "--out", tmp_path / "alone"))
    assert_same_sweep(tmp_path / "alone" / "tiny", tmp_path / "stacked" / "tiny")


def test_a_batch_of_configurations_trained_before_is_told_their_results_and_the_search_goes_on(tmp_path):
    """A space of two configurations, 5 trials asked one at a time: the trials that repeat one trained in an
    earlier batch are told its result without training, and the search ends with all 5."""
    config = write_yaml(tmp_path, searchable(epochs=2))
    search = ["sweep", config, "--method", "random", "--trials", "5", "--batch", "1",
              "--grid", "optim.lr=choice(0.01,0.1)", "--out", tmp_path / "out"]
    succeeded(invoke(*search))
    rows = trials_of(tmp_path / "out" / "tiny")
    assert [int(row["trial"]) for row in rows] == list(range(5))
    assert {row["status"] for row in rows} == {"completed"}
    runs = {row["run_id"] for row in rows}
    assert len(runs) == 2 and len(list((tmp_path / "out" / "tiny").glob("*/summary.json"))) == 2
    for row in rows:  # each trial carries its configuration's result
        summary = json.loads((tmp_path / "out" / "tiny" / row["run_id"] / "summary.json").read_text())
        assert float(row["val_error"]) == pytest.approx(summary["val_error"])
    assert set(study_states(tmp_path / "out" / "tiny").values()) == {"COMPLETE"}


def test_halving_prunes_the_same_trials_stacked_or_one_by_one(tmp_path):
    """Each rung is decided across the whole batch, once every trial of it has reached the rung: in one
    stack, in two (two widths), or one by one, the same trials are pruned at the same epochs, with the
    same numbers in every epoch they trained."""
    config = write_yaml(tmp_path, searchable(epochs=3))
    search = ["sweep", config, "--method", "random", "--trials", "9", *LR_SPACE, "--prune", "asha",
              "--grid", "model.hidden=choice([8],[12])"]
    stacked = succeeded(invoke(*search, "--out", tmp_path / "stacked"))
    assert "train as 2 stacked models" in stacked
    succeeded(invoke(*search, "--no-vectorize", "--out", tmp_path / "alone"))
    rows = trials_of(tmp_path / "stacked" / "tiny")
    assert {row["status"] for row in rows} == {"completed", "pruned"}
    assert [int(row["epochs_run"]) for row in rows].count(1) == 9 - 9 // 3  # the first rung keeps 1/3 of 9
    assert_same_sweep(tmp_path / "alone" / "tiny", tmp_path / "stacked" / "tiny")


# ---- resuming ------------------------------------------------------------------------------------

STOP_IN_SECOND_BATCH = """
import sys, time
from pathlib import Path
from dlcli.components import run_log
from dlcli.sweep import search

ready, told = Path(sys.argv[1]), set()
tell, record, checkpoint = search.tell, run_log.RunLog.record, run_log.RunLog.checkpoint
written = []

def counting(study, numbers, summary, metric):
    tell(study, numbers, summary, metric)
    told.update(numbers)

def remembering(self, engine, position):
    checkpoint(self, engine, position)
    written.append(position["epoch"])

def stopping(self, row, *rest):
    record(self, row, *rest)
    if len(told) >= 2 and written and row["epoch"] > written[-1]:
        ready.touch()
        while True:
            time.sleep(1)

search.tell, run_log.RunLog.record, run_log.RunLog.checkpoint = counting, stopping, remembering
from dlcli.cli import main
sys.argv = ["dlcli", *sys.argv[2:]]
main()
"""


def refused(result) -> str:
    """Exit 2, no traceback, one line on stderr."""
    assert result.exit_code == 2 and "Traceback" not in result.output, result.output
    lines = [line for line in text(result.stderr).splitlines() if line.strip()]
    assert len(lines) == 1, lines
    return lines[0]


@pytest.mark.parametrize("dry_run", [[], ["--dry-run"]], ids=["run", "dry run"])
def test_a_bound_only_the_data_rules_out_is_refused_before_anything_is_written(tmp_path, dry_run):
    """A shift is fine for the config's checks, but gaussians' samples are a table, not signals."""
    config = write_yaml(tmp_path, searchable(epochs=2))
    result = invoke("sweep", config, "--method", "random", "--trials", "3", "--grid", "data.augment.shift=intuniform(0,5)",
                    "--out", tmp_path / "out", *dry_run)
    (line,) = user_error(result, tmp_path / "out")
    assert line.endswith("data.augment.shift: shifts signals and images; gaussians is a table (probe point 2)"), line


def test_a_sampled_point_the_data_rules_out_fails_its_trial_and_the_search_goes_on(tmp_path):
    """Between the probed bounds 10 and 12, a batch of 11 leaves one of the 144 training samples over,
    which batch norm cannot take: those trials fail with the reason, in runs.csv too; the others train."""
    config = searchable(epochs=2)
    config["data"]["n_train"], config["model"] = 192, {"name": "mlp", "hidden": [8], "norm": "batch"}
    path = write_yaml(tmp_path, config)
    search = ["sweep", path, "--method", "random", "--trials", "6", "--grid", "optim.batch_size=intuniform(10,12)",
              "--out", tmp_path / "out"]
    result = invoke(*search)
    assert result.exit_code == 1, result.output  # a trial failed
    rows = trials_of(tmp_path / "out" / "tiny")
    failed = [row for row in rows if row["optim.batch_size"] == "11"]
    assert failed and {row["status"] for row in failed} == {"failed"}  # the premise: 11 was sampled
    assert all("a batch of 11 leaves a last batch of 1 of the 144 training samples" in row["message"] for row in failed)
    assert {row["status"] for row in rows if row["optim.batch_size"] != "11"} == {"completed"}
    assert "(6 already done" in text(invoke(*search).stdout)  # told: never tried again


def test_a_diverged_trial_cleaned_away_stays_diverged(tmp_path):
    config = write_yaml(tmp_path, searchable(epochs=2))
    search = ["sweep", config, "--method", "random", "--trials", "3", "--grid", "optim.lr=loguniform(1e4,1e6)",
              "--out", tmp_path / "out"]
    succeeded(invoke(*search))
    sweep_dir = tmp_path / "out" / "tiny"
    before = trials_of(sweep_dir)
    assert {row["status"] for row in before} == {"diverged"}  # the premise
    succeeded(invoke("clean", sweep_dir, "--status", "diverged"))
    assert "(3 already done" in succeeded(invoke(*search))  # exit 0: a diverged trial is an outcome, not a failure
    after = trials_of(sweep_dir)
    assert [row["status"] for row in after] == ["diverged"] * 3
    assert [row["message"] for row in after] == [row["message"] for row in before]


def test_a_folder_continues_only_its_own_search(tmp_path):
    """Another config file's values (an edited file), or a grid, is refused with the folder untouched;
    the same values given as --set flags in another order continue the search."""
    config = searchable(epochs=2)
    path = write_yaml(tmp_path, config)
    search = ["sweep", path, "--method", "random", *LR_SPACE, "--out", tmp_path / "out"]
    flags = ["--set", "optim.batch_size=16", "--set", "model.hidden=[8]"]
    succeeded(invoke(*search, "--trials", "2", *flags))
    sweep_dir = tmp_path / "out" / "tiny"
    before = {file.name: file.read_bytes() for file in sweep_dir.iterdir() if file.is_file()}

    config["train"]["epochs"] = 3
    write_yaml(tmp_path, config)
    message = refused(invoke(*search, "--trials", "4", *flags))
    assert "holds another search (the config's values (its file and --set) differ)" in message
    assert refused(invoke(*search, "--trials", "4", "--set", "optim.batch_size=32", "--set", "model.hidden=[8]"))
    assert refused(invoke(*search, "--trials", "4", *flags, "--dry-run")).endswith("differ); continue it with the "
                                                                          "same settings, or give this one another --out")
    grid = refused(invoke("sweep", path, "--grid", "optim.lr=0.01,0.1", *flags, "--out", tmp_path / "out"))
    assert refused(invoke("sweep", path, "--grid", "optim.lr=0.01,0.1", *flags, "--out", tmp_path / "out",
                          "--dry-run")) == grid
    assert grid == f"error: {sweep_dir}: holds a search; continue it with dlcli sweep --method random, or give this " \
                   "one another --out"
    assert {file.name: file.read_bytes() for file in sweep_dir.iterdir() if file.is_file()} == before

    config["train"]["epochs"] = 2
    write_yaml(tmp_path, config)
    continued = succeeded(invoke(*search, "--trials", "4", *flags[2:], *flags[:2]))
    assert "(2 already done" in continued
    assert [row["status"] for row in trials_of(sweep_dir)] == ["completed"] * 4


def test_a_search_with_its_axes_in_another_order_is_another_search_and_a_grid_folder_is_not_one(tmp_path):
    """The sampler draws the axes in order: reordered, the same folder would continue with other trials."""
    path = write_yaml(tmp_path, searchable(epochs=1))
    axes = [["--grid", "optim.lr=loguniform(0.01,0.1)"], ["--grid", "optim.momentum=uniform(0,0.9)"]]
    search = ["sweep", path, "--method", "random", "--out", tmp_path / "out"]
    succeeded(invoke(*search, "--trials", "2", *axes[0], *axes[1]))
    assert "holds another search (space differ)" in refused(invoke(*search, "--trials", "4", *axes[1], *axes[0]))
    succeeded(invoke("sweep", path, "--grid", "optim.lr=0.01,0.1", "--out", tmp_path / "grid"))
    message = refused(invoke(*search[:-1], tmp_path / "grid", "--trials", "2", *axes[0]))
    assert message.endswith("grid/tiny: holds a grid sweep; give the search another --out or name"), message


def test_a_search_killed_mid_batch_continues_without_repeating_a_trial(tmp_path):
    config = searchable(name="slow", epochs=4, checkpoint_every=1)
    config["data"]["n_train"] = 800
    config["optim"]["batch_size"] = 8
    path = write_yaml(tmp_path, config)
    arguments = ["sweep", str(path), "--method", "tpe", "--trials", "6", "--batch", "2", *LR_SPACE,
                 "--grid", "model.dropout=uniform(0,0.3)", "--prune", "asha", "--min-epochs", "2", "--eta", "2"]
    out, ready = tmp_path / "out", tmp_path / "stopped"
    with open(tmp_path / "first.log", "wb") as log:
        command = [sys.executable, "-c", STOP_IN_SECOND_BATCH, str(ready), *arguments, "--out", str(out)]
        process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, cwd=tmp_path,
                                   env={**os.environ, **WIDE})
        try:
            while not ready.exists():  # an event, not a deadline
                assert process.poll() is None, (tmp_path / "first.log").read_text()
                time.sleep(0.02)
        finally:
            process.send_signal(signal.SIGKILL)
            process.wait()
    sweep_dir = out / "slow"
    before = study_states(sweep_dir)
    finished = {number for number, state in before.items() if state != "RUNNING"}
    assert len(finished) >= 2 and "RUNNING" in before.values()
    kept = {row["run_id"]: (sweep_dir / row["run_id"] / "summary.json").read_bytes()
            for row in trials_of(sweep_dir) if int(row["trial"]) in finished}

    second = subprocess.run([sys.executable, "-m", "dlcli", *arguments, "--out", str(out)], capture_output=True,
                            text=True, cwd=tmp_path, env={**os.environ, **WIDE})
    assert second.returncode == 0, second.stdout + second.stderr
    assert f"({len(finished)} already done" in text(second.stdout)
    for run_id, payload in kept.items():  # not trained again
        assert (sweep_dir / run_id / "summary.json").read_bytes() == payload
    after = study_states(sweep_dir)
    assert sorted(after) == list(range(6)) and "RUNNING" not in after.values()

    succeeded(invoke(*arguments, "--out", tmp_path / "reference"))
    assert_same_sweep(tmp_path / "reference" / "slow", sweep_dir)


def test_an_interrupt_in_one_stack_stops_the_whole_batch_and_the_search_continues(tmp_path, monkeypatch):
    """Ctrl-C while the second of two stacks trains its second epoch: every run in flight, in either
    stack, ends as interrupted with its epochs kept; run again, the search equals an uninterrupted one."""
    config = write_yaml(tmp_path, searchable(epochs=4, checkpoint_every=1))
    arguments = [*LR_SPACE[1:], "model.hidden=choice([8],[12])"]
    options = dict(method="random", trials=8, prune="asha", seed=2)
    reference = run_search(load_search(config, arguments, **options), tmp_path / "reference")

    from dlcli.engine import loop

    train_epoch, calls = loop.train_epoch, []

    def interrupted_at_the_fourth(*args):
        calls.append(len(args[2]))
        if len(calls) == 4:  # the second stack's second epoch
            raise KeyboardInterrupt
        return train_epoch(*args)

    monkeypatch.setattr(loop, "train_epoch", interrupted_at_the_fourth)
    with pytest.raises(KeyboardInterrupt):
        run_search(load_search(config, arguments, **options), tmp_path / "out")
    sweep_dir = tmp_path / "out" / "tiny"
    statuses = {row["run_id"]: json.loads((sweep_dir / row["run_id"] / "summary.json").read_text())["status"]
                for row in trials_of(sweep_dir)}
    assert set(statuses.values()) == {"pruned", "interrupted"}  # pruned at the first rung, or stopped there
    assert list(statuses.values()).count("interrupted") == sum(calls[2:4])  # both stacks' runs in flight
    monkeypatch.setattr(loop, "train_epoch", train_epoch)
    continued = run_search(load_search(config, arguments, **options), tmp_path / "out")
    assert continued.best["trial"] == reference.best["trial"]
    assert_same_sweep(tmp_path / "reference" / "tiny", sweep_dir)


def test_a_stack_that_breaks_fails_its_trials_and_the_batch_goes_on(tmp_path, monkeypatch):
    config = write_yaml(tmp_path, searchable(epochs=4))
    arguments = [*LR_SPACE[1:], "model.hidden=choice([8],[12])"]
    from dlcli.engine import loop

    train_epoch, calls = loop.train_epoch, []

    def breaking_at_the_fourth(*args):
        calls.append(len(args[2]))
        if len(calls) == 4:  # the second stack's second epoch
            raise RuntimeError("out of memory")
        return train_epoch(*args)

    monkeypatch.setattr(loop, "train_epoch", breaking_at_the_fourth)
    result = run_search(load_search(config, arguments, method="random", trials=8, prune="asha", seed=2),
                        tmp_path / "out")
    failed = [row for row in result.rows if row["status"] == "failed"]
    assert len(failed) == calls[3] and all("out of memory" in row["message"] for row in failed)
    assert len(calls) > 4 and {row["status"] for row in result.rows} == {"failed", "pruned", "completed"}
    states = study_states(result.sweep_dir)
    assert {states[row["trial"]] for row in failed} == {"FAIL"}
    assert result.best is not None and result.best["status"] == "completed"


def test_tpe_asks_in_batches_by_default_so_that_it_learns_between_them(tmp_path):
    """Asked all at once, TPE's trials would be its random start; by default it asks 16 at a time, each
    batch after the trials before it were told (random and quasi-random fill a stack at once)."""
    from dlcli.sweep.search import TPE_BATCH

    config = write_yaml(tmp_path, searchable(epochs=1))
    succeeded(invoke("sweep", config, "--method", "tpe", "--trials", str(TPE_BATCH + 2), *LR_SPACE,
                     "--out", tmp_path / "tpe"))
    backend = optuna.storages.journal.JournalFileBackend(str(tmp_path / "tpe" / "tiny" / "search.journal"))
    trials = optuna.load_study(study_name="search", storage=optuna.storages.JournalStorage(backend)).get_trials()
    first, second = trials[:TPE_BATCH], trials[TPE_BATCH:]
    assert max(trial.datetime_start for trial in first) < min(trial.datetime_complete for trial in first)
    assert max(trial.datetime_complete for trial in first) <= min(trial.datetime_start for trial in second)

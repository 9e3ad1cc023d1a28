"""compare: tables of runs and seed groups, filters, pivots, curves, output formats and figures."""
from __future__ import annotations

import io
import json
import re
import shutil
import struct
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
import yaml
from typer.testing import CliRunner

from conftest import REPO, text, tiny_config
from dlcli.cli import app

runner = CliRunner()
WIDE = {"COLUMNS": "500"}  # wide enough that no table cell is cut or wrapped

BATCH_SIZES = [16, 32]
GOOD_LRS = [0.05, 0.2]
DIVERGING_LR = 1000000.0
SEEDS = 2
KEYS = ["optim.batch_size", "optim.lr"]


# ---- helpers -------------------------------------------------------------------------------------


def invoke(*args):
    return runner.invoke(app, [str(arg) for arg in args], env=WIDE)


def ok(result) -> str:
    assert result.exception is None or isinstance(result.exception, SystemExit), repr(result.exception)
    assert result.exit_code == 0, (result.exit_code, result.output)
    return text(result.stdout)


def user_error(result) -> str:
    assert result.exception is None or isinstance(result.exception, SystemExit), repr(result.exception)
    assert "Traceback" not in result.output
    assert result.exit_code == 2, (result.exit_code, result.output)
    assert text(result.stdout).strip() == "", result.stdout
    message = text(result.stderr)
    assert message.strip(), "no message on stderr"
    return message


def csv_of(*args) -> pd.DataFrame:
    return pd.read_csv(io.StringIO(ok(invoke("compare", *args, "--format", "csv"))), dtype={"run_id": str})


def table_rows(stdout: str) -> tuple[list[str], list[list[str]]]:
    """A rich table's header cells and body rows (lines framed by ┃ and │)."""
    header = next(line for line in stdout.splitlines() if line.startswith("┃"))
    names = [cell.strip() for cell in header.strip("┃").split("┃")]
    rows = [[cell.strip() for cell in line.strip("│").split("│")]
            for line in stdout.splitlines() if line.startswith("│")]
    return names, rows


def mean_of(cell: str) -> float:
    return float(cell.split("±")[0])


def std_of(cell: str) -> float:
    return float(cell.split("±")[1])


def png_size(path: Path) -> tuple[int, int]:
    payload = path.read_bytes()
    assert payload[:8] == b"\x89PNG\r\n\x1a\n", payload[:8]
    assert payload[12:16] == b"IHDR"
    return struct.unpack(">II", payload[16:24])


# ---- the sweep under comparison ------------------------------------------------------------------


@pytest.fixture(scope="module")
def sweep(tmp_path_factory):
    """2 batch sizes × (2 learning rates + one that diverges) × 2 seeds, through the CLI:
    (sweep dir, runs.csv as a frame with lr and batch size as numbers)."""
    folder = tmp_path_factory.mktemp("compare")
    config = folder / "cmp.yaml"
    config.write_text(yaml.safe_dump(tiny_config(name="cmp", train={"epochs": 2})))
    out = folder / "out"
    result = invoke("sweep", config, "--grid", f"optim.batch_size={','.join(map(str, BATCH_SIZES))}",
                    "--grid", f"optim.lr={','.join(map(str, GOOD_LRS + [DIVERGING_LR]))}", "--seeds", str(SEEDS),
                    "--out", out)
    ok(result)
    runs = pd.read_csv(out / "cmp" / "runs.csv", dtype={"run_id": str})
    assert len(runs) == len(BATCH_SIZES) * (len(GOOD_LRS) + 1) * SEEDS
    # the premise of the tests below: exactly the huge learning rate diverges
    assert (runs["status"] == "diverged").tolist() == (runs["optim.lr"] == DIVERGING_LR).tolist()
    return out / "cmp", runs


def group_means(runs: pd.DataFrame, metric: str = "test_error") -> dict[tuple, float]:
    return {(int(bs), float(lr)): value for (bs, lr), value in runs.groupby(KEYS)[metric].mean().items()}


def group_stds(runs: pd.DataFrame, metric: str = "test_error") -> dict[tuple, float]:
    return {(int(bs), float(lr)): value for (bs, lr), value in runs.groupby(KEYS)[metric].std(ddof=1).items()}


# ---- the default table ---------------------------------------------------------------------------


def test_default_table_groups_seeds_sorted_by_test_error(sweep):
    sweep_dir, runs = sweep
    stdout = ok(invoke("compare", sweep_dir))
    # constant keys once, above the table
    assert stdout.count("data.name=gaussians") == 1, stdout
    assert stdout.index("data.name=gaussians") < stdout.index("┏")
    assert stdout.count("train.epochs=2") == 1
    names, rows = table_rows(stdout)
    # key columns are headed by their shortest unique suffix: optim.batch_size -> batch_size
    names = ["optim." + name if name in ("batch_size", "lr") else name for name in names]
    for column in (*KEYS, "test_error", "train_error", "gap", "status", "n"):
        assert column in names, names
    assert "seed" not in names
    at = {name: names.index(name) for name in names}
    means, stds = group_means(runs), group_stds(runs)
    assert len(rows) == len(means) == len(BATCH_SIZES) * (len(GOOD_LRS) + 1)
    keys_in_order = []
    for row in rows:
        key = (int(row[at["optim.batch_size"]]), float(row[at["optim.lr"]]))
        keys_in_order.append(key)
        assert row[at["n"]] == str(SEEDS), row
        assert "±" in row[at["test_error"]] and "±" in row[at["train_error"]], row
        assert mean_of(row[at["test_error"]]) == pytest.approx(means[key], abs=5e-5), key
        assert std_of(row[at["test_error"]]) == pytest.approx(stds[key], abs=5e-4), key
        train_mean = runs[(runs["optim.batch_size"] == key[0]) & (runs["optim.lr"] == key[1])]["train_error"].mean()
        assert mean_of(row[at["train_error"]]) == pytest.approx(train_mean, abs=5e-5), key
    assert sorted(keys_in_order) == sorted(means)
    # diverged groups at the bottom, each part sorted by its mean test error
    statuses = [row[at["status"]] for row in rows]
    diverging = len(BATCH_SIZES)
    assert statuses == ["completed"] * (len(rows) - diverging) + ["diverged"] * diverging, statuses
    assert all(lr == DIVERGING_LR for _, lr in keys_in_order[-diverging:])
    completed = [means[key] for key in keys_in_order[:-diverging]]
    failed = [means[key] for key in keys_in_order[-diverging:]]
    assert completed == sorted(completed) and failed == sorted(failed)


def test_csv_format_means_match_my_groupby(sweep):
    _, runs = sweep
    frame = csv_of(sweep[0])
    assert {*KEYS, "test_error", "test_error_std", "n", "status"} <= set(frame.columns)
    means, stds = group_means(runs), group_stds(runs)
    assert len(frame) == len(means)
    shown = {(int(row["optim.batch_size"]), float(row["optim.lr"])): row for _, row in frame.iterrows()}
    assert set(shown) == set(means)
    for key, row in shown.items():
        assert row["test_error"] == pytest.approx(means[key], abs=1e-9), key
        assert row["test_error_std"] == pytest.approx(stds[key], abs=1e-9), key
        assert row["n"] == SEEDS
        assert row["status"] == ("diverged" if key[1] == DIVERGING_LR else "completed")
    ordered = frame["test_error"].tolist()
    completed = frame["status"] == "completed"
    assert completed.tolist() == sorted(completed.tolist(), reverse=True)  # failures last
    assert ordered[: completed.sum()] == sorted(ordered[: completed.sum()])


def test_json_format(sweep):
    sweep_dir, runs = sweep
    records = json.loads(ok(invoke("compare", sweep_dir, "--format", "json")))
    means = group_means(runs)
    assert isinstance(records, list) and len(records) == len(means)
    for record in records:
        key = (int(record["optim.batch_size"]), float(record["optim.lr"]))
        assert record["test_error"] == pytest.approx(means[key], abs=1e-9)
        assert record["n"] == SEEDS


def test_markdown_format(sweep):
    sweep_dir, runs = sweep
    lines = ok(invoke("compare", sweep_dir, "--format", "markdown")).strip().splitlines()
    header = [cell.strip() for cell in lines[0].strip().strip("|").split("|")]
    assert {*KEYS, "test_error", "n"} <= set(header), header
    assert re.fullmatch(r"\|(\s*:?-{3,}:?\s*\|)+", lines[1].strip()), lines[1]
    assert lines[1].count("|") == lines[0].count("|")
    assert len(lines) == 2 + len(group_means(runs))
    assert all(line.startswith("|") and line.count("|") == lines[0].count("|") for line in lines[2:])


# ---- --where -------------------------------------------------------------------------------------


@pytest.mark.parametrize("expression, keep", [
    ("optim.lr>=0.1", lambda runs: runs["optim.lr"] >= 0.1),
    ("optim.lr<0.1", lambda runs: runs["optim.lr"] < 0.1),
    ("status==completed", lambda runs: runs["status"] == "completed"),
    ("optim.batch_size!=16", lambda runs: runs["optim.batch_size"] != 16),
    ("optim.lr>=1e-1", lambda runs: runs["optim.lr"] >= 0.1),  # YAML 1.1 reads 1e-1 as text: a number here
    ("optim.lr<1E-1", lambda runs: runs["optim.lr"] < 0.1),
])
def test_where_filters_runs(sweep, expression, keep):
    sweep_dir, runs = sweep
    kept = runs[keep(runs)]
    assert 0 < len(kept) < len(runs)
    frame = csv_of(sweep_dir, "--where", expression)
    assert frame["n"].sum() == len(kept)
    shown = {(int(row["optim.batch_size"]), float(row["optim.lr"])) for _, row in frame.iterrows()} \
        if set(KEYS) <= set(frame.columns) else None
    if shown is not None:
        assert shown == set(group_means(kept))


def test_two_wheres_both_hold(sweep):
    sweep_dir, runs = sweep
    frame = csv_of(sweep_dir, "--where", "status==completed", "--where", "optim.batch_size==32")
    kept = runs[(runs["status"] == "completed") & (runs["optim.batch_size"] == 32)]
    assert frame["n"].sum() == len(kept)
    assert (frame["status"] == "completed").all()


@pytest.mark.parametrize("expression, named", [
    ("optim.lr~0.1", "optim.lr~0.1"),
    ("optim.lr", "optim.lr"),
    ("optim.lrr>=0.1", "optim.lrr"),
    ("nonsense==3", "nonsense"),
    ("optim.lr>>0.1", "optim.lr>>0.1: >> is not an operator"),
    ("optim.lr>0.1x", "optim.lr>0.1x: 0.1x is not a number, and optim.lr holds numbers"),
    ("test_error<abc", "test_error<abc: abc is not a number"),
    ("optim.lr=<0.1", "optim.lr=<0.1: =< is not an operator"),
])
def test_bad_where_exits_2_naming_it(sweep, expression, named):
    message = user_error(invoke("compare", sweep[0], "--where", expression))
    assert "--where" in message and named in message, message


# ---- --pivot -------------------------------------------------------------------------------------


def test_pivot_cells_are_the_mean_test_error(sweep):
    sweep_dir, runs = sweep
    frame = pd.read_csv(io.StringIO(ok(invoke("compare", sweep_dir, "--pivot", "optim.batch_size,optim.lr",
                                              "--format", "csv"))), dtype=str)
    assert frame.columns[0] == "optim.batch_size"
    lrs = [float(column) for column in frame.columns[1:]]
    assert sorted(lrs) == lrs == sorted(GOOD_LRS + [DIVERGING_LR])
    assert [int(v) for v in frame["optim.batch_size"]] == BATCH_SIZES
    means = group_means(runs)
    for _, row in frame.iterrows():
        batch_size = int(row["optim.batch_size"])
        for column, lr in zip(frame.columns[1:], lrs):
            if lr == DIVERGING_LR:
                assert row[column] == "diverged", (batch_size, lr, row[column])
            else:
                assert float(row[column]) == pytest.approx(means[(batch_size, lr)], abs=1e-9), (batch_size, lr)


def test_pivot_table_marks_the_diverged_cells(sweep):
    sweep_dir, runs = sweep
    stdout = ok(invoke("compare", sweep_dir, "--pivot", "optim.batch_size,optim.lr"))
    names, rows = table_rows(stdout)
    assert names[0] == "optim.batch_size"
    assert len(rows) == len(BATCH_SIZES)
    means = group_means(runs)
    best = min(value for key, value in means.items() if key[1] != DIVERGING_LR)
    for row in rows:
        cells = dict(zip(names[1:], row[1:]))
        assert "✗" in cells["1e+06"], cells
        for lr in GOOD_LRS:
            value = float(cells[f"{lr:g}"].replace("★", ""))
            assert value == pytest.approx(means[(int(row[0]), lr)], abs=5e-5)
    starred = [cell for row in rows for cell in row if "★" in cell]
    assert len(starred) == 1 and float(starred[0].replace("★", "")) == pytest.approx(best, abs=5e-5)


def test_the_shared_keys_named_above_the_table_are_those_set_the_others_counted(sweep):
    from dlcli.config.flat import flatten

    sweep_dir, runs = sweep
    stdout = ok(invoke("compare", sweep_dir))
    line = " ".join(stdout[:stdout.index("┏")].split())
    named = dict(pair.split("=", 1) for pair in line.split("the same in all: ")[1].split(";")[0].split(" · "))
    assert {"name": "cmp", "data.name": "gaussians", "train.epochs": "2"}.items() <= named.items()
    assert not {"seed", "optim.lr", "optim.batch_size"} & set(named)  # they vary: the table's columns
    assert not {"train.eval_every", "optim.schedule.name", "regularization.l2"} & set(named)  # at their defaults
    config = flatten(yaml.safe_load(next(sweep_dir.glob("*/config.yaml")).read_text()))
    others = int(re.search(r"the other (\d+) keys at their defaults", line).group(1))
    assert len(named) + others + 3 == len(config)


def narrow_table(stdout: str, width: int) -> tuple[list[str], list[list[str]]]:
    """The header and rows of a table printed boxed, or compact (a rule under the header, columns two
    spaces apart or more), every line checked to fit `width` with no cell cut short."""
    lines = stdout.splitlines()
    assert max(map(len, lines)) <= width and not any("…" in line for line in lines), stdout
    if any(line.startswith("┃") for line in lines):
        return table_rows(stdout)
    rule = next(i for i, line in enumerate(lines) if line.strip() and set(line.strip()) == {"─"})
    body = lines[rule + 1:]
    body = body[:next((i for i, line in enumerate(body) if not line.strip()), len(body))]
    return re.split(r"\s{2,}", lines[rule - 1].strip()), [re.split(r"\s{2,}", line.strip()) for line in body]


def test_a_narrow_terminal_leaves_whole_columns_out_and_names_them(sweep, monkeypatch):
    from dlcli.report.console import console

    sweep_dir, runs = sweep
    monkeypatch.setattr(console, "width", 80)
    stdout = ok(invoke("compare", sweep_dir))
    names, rows = narrow_table(stdout, 80)
    left_out = re.search(r"left out for the terminal's width: ([\w, ]+) \(--format csv", " ".join(stdout.split()))
    shown = ["optim." + name if name in ("batch_size", "lr") else name for name in names]
    assert sorted(shown + left_out.group(1).split(", ")) == sorted(
        [*KEYS, "train_error", "test_error", "gap", "train_loss", "test_loss", "best_epoch", "status", "n"])
    means = group_means(runs)
    for row in rows:
        cells = dict(zip(shown, row))
        key = (int(cells["optim.batch_size"]), float(cells["optim.lr"]))
        assert mean_of(cells["test_error"]) == pytest.approx(means[key], abs=5e-5), cells


def test_a_pivot_too_wide_for_the_terminal_is_turned(sweep, monkeypatch):
    from dlcli.report.console import console

    sweep_dir, runs = sweep
    monkeypatch.setattr(console, "width", 40)
    stdout = ok(invoke("compare", sweep_dir, "--pivot", "optim.batch_size,optim.lr"))
    assert "by optim.lr (rows) × optim.batch_size (columns), turned" in " ".join(stdout.split())
    names, rows = narrow_table(stdout, 40)
    assert names == ["optim.lr", *map(str, BATCH_SIZES)] and len(rows) == len(GOOD_LRS) + 1
    means = group_means(runs)
    for row in rows:
        for batch_size, cell in zip(BATCH_SIZES, row[1:]):
            if float(row[0]) == DIVERGING_LR:
                assert cell == "✗"
            else:
                assert float(cell.replace("★", "")) == pytest.approx(means[(batch_size, float(row[0]))], abs=5e-5)


def test_pivot_needs_two_keys(sweep):
    message = user_error(invoke("compare", sweep[0], "--pivot", "optim.lr"))
    assert "--pivot" in message


@pytest.mark.parametrize("args, named", [
    (["--pivot", "optim.batch_size,optim.lr", "--value", "nope"], "--value nope: unknown column"),
    (["--pivot", "optim.batch_size,nope"], "--pivot nope: unknown column"),
    (["--by", "nope"], "--by nope: unknown column"),
    (["--columns", "nope"], "--columns nope: unknown column"),
    (["--x", "step"], "--x: applies with --curves, which was not given"),  # an option without its companion
    (["--stop-metric", "val_error"], "--stop-metric: applies with --patience"),
    (["--value", "train_error"], "--value: applies with --pivot or --plot"),
])
def test_an_unknown_column_or_a_lone_option_is_named_with_the_option_that_gave_it(sweep, args, named):
    message = user_error(invoke("compare", sweep[0], *args))
    assert named in message, message


# ---- --curves ------------------------------------------------------------------------------------


def test_curves_show_the_epochs(sweep):
    sweep_dir, runs = sweep
    chosen = runs[(runs["optim.batch_size"] == 16) & (runs["optim.lr"] == 0.05)]
    stdout = ok(invoke("compare", sweep_dir, "--curves", "--where", "optim.batch_size==16",
                       "--where", "optim.lr==0.05"))
    names, rows = table_rows(stdout)
    assert names[0] == "epoch"
    epochs = int(chosen["epochs_run"].max())
    assert [int(row[0]) for row in rows] == list(range(epochs + 1))
    assert len(names) == 1 + len(chosen)
    # every run's final train / test error is in the last row
    last = rows[-1][1:]
    expected = {f"{train:.4f} / {test:.4f}" for train, test in zip(chosen["train_error"], chosen["test_error"])}
    assert set(last) == expected


def test_curves_too_wide_for_the_terminal_turn_to_a_row_per_run(sweep, monkeypatch):
    from dlcli.report.console import console

    sweep_dir, runs = sweep
    monkeypatch.setattr(console, "width", 90)
    stdout = ok(invoke("compare", sweep_dir, "--curves"))
    assert "turned to fit the terminal: a row per run" in " ".join(stdout.split())
    names, rows = narrow_table(stdout, 90)
    epochs = int(runs["epochs_run"].max())
    assert names[0] == "run" and names[-1] == f"epoch {epochs}" and len(rows) == len(runs)
    finals = {f"{train:.4f} / {test:.4f}" for train, test, ran in zip(runs["train_error"], runs["test_error"],
                                                                   runs["epochs_run"]) if ran == epochs}
    assert {row[-1] for row in rows if row[-1]} == finals


def test_curves_csv_has_one_row_per_run_and_epoch(sweep):
    sweep_dir, runs = sweep
    frame = csv_of(sweep_dir, "--curves")
    assert {"run_id", "epoch", "train_error", "test_error"} <= set(frame.columns)
    assert len(frame) == int((runs["epochs_run"] + 1).sum())
    per_run = frame.groupby("run_id")["epoch"].apply(list).to_dict()
    assert set(per_run) == set(runs["run_id"])
    for run_id, epochs_run in zip(runs["run_id"], runs["epochs_run"]):
        assert per_run[run_id] == list(range(int(epochs_run) + 1)), run_id
        last = frame[(frame["run_id"] == run_id) & (frame["epoch"] == epochs_run)].iloc[0]
        expected = runs[runs["run_id"] == run_id].iloc[0]
        assert last["test_error"] == pytest.approx(expected["test_error"], abs=1e-12)


# ---- --plot --------------------------------------------------------------------------------------


@pytest.mark.parametrize("view", [[], ["--pivot", "optim.batch_size,optim.lr"], ["--curves"]],
                         ids=["default", "pivot", "curves"])
def test_plot_writes_a_png(sweep, tmp_path, view):
    path = tmp_path / "figure.png"
    stdout = ok(invoke("compare", sweep[0], *view, "--plot", path))
    assert path.is_file()
    assert str(path) in stdout.replace("\n", "")
    width, height = png_size(path)
    assert 300 <= width <= 3000 and 300 <= height <= 3000, (width, height)
    assert path.stat().st_size > 10_000


def test_plot_into_a_missing_folder_exits_2(sweep, tmp_path):
    message = user_error(invoke("compare", sweep[0], "--plot", tmp_path / "missing" / "figure.png"))
    assert "--plot" in message


# ---- what compare reads --------------------------------------------------------------------------


def test_compare_a_single_run_directory(sweep):
    sweep_dir, runs = sweep
    run = runs.iloc[2]
    run_dir = sweep_dir / run["run_id"]
    stdout = ok(invoke("compare", run_dir))
    assert run["run_id"] in stdout
    frame = csv_of(run_dir)
    assert len(frame) == 1
    assert frame["run_id"].iloc[0] == run["run_id"]
    summary = json.loads((run_dir / "summary.json").read_text())
    assert frame["test_error"].iloc[0] == pytest.approx(summary["test_error"], abs=1e-12)
    assert frame["train_error"].iloc[0] == pytest.approx(summary["train_error"], abs=1e-12)


def test_compare_a_results_root_holding_two_sweeps(sweep, tmp_path):
    sweep_dir, runs = sweep
    root = tmp_path / "results"
    shutil.copytree(sweep_dir, root / "cmp")
    config = tmp_path / "other.yaml"
    config.write_text(yaml.safe_dump(tiny_config(name="other", train={"epochs": 2})))
    ok(invoke("sweep", config, "--grid", "optim.lr=0.05,0.2", "--out", root))
    other = pd.read_csv(root / "other" / "runs.csv", dtype={"run_id": str})
    assert len(other) == 2

    frame = csv_of(root)
    assert set(frame["name"]) == {"cmp", "other"}
    assert frame["n"].sum() == len(runs) + len(other)
    both = pd.concat([runs.assign(name="cmp"), other.assign(name="other", **{"optim.batch_size": 32})])
    expected = both.groupby(["name", *KEYS])["test_error"].mean()
    assert len(frame) == len(expected)
    for _, row in frame.iterrows():
        key = (row["name"], int(row["optim.batch_size"]), float(row["optim.lr"]))
        assert row["test_error"] == pytest.approx(expected[key], abs=1e-9), key


def test_compare_does_not_import_torch(sweep):
    code = ("import sys; from typer.testing import CliRunner; from dlcli.cli import app; "
            f"r=CliRunner().invoke(app, ['compare', {str(sweep[0])!r}]); "
            "assert r.exit_code==0, r.output; print('torch' in sys.modules)")
    completed = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO)
    assert completed.returncode == 0, completed.stderr
    assert completed.stdout.strip() == "False", completed.stdout


def test_a_path_with_no_runs_exits_2(tmp_path):
    empty = tmp_path / "empty"
    (empty / "nested").mkdir(parents=True)
    message = user_error(invoke("compare", empty))
    assert str(empty) in message and "no runs" in message


def test_a_missing_path_exits_2(tmp_path):
    message = user_error(invoke("compare", tmp_path / "nowhere"))
    assert "nowhere" in message


def test_where_that_matches_nothing_exits_2(sweep):
    message = user_error(invoke("compare", sweep[0], "--where", "optim.lr>1e9"))
    assert "--where" in message


def test_a_seed_group_whose_runs_all_succeeded_sorts_among_the_completed_ones():
    """Early stopping is success: a group of one early-stopped and one completed run is not pushed below
    the others, and the same mix is spelled the same whichever run comes first."""
    from dlcli.analysis.compare import group, sort_runs

    runs = pd.DataFrame({"optim.lr": [0.1, 0.1, 0.2, 0.2, 0.3, 0.3, 0.4, 0.4],
                         "status": ["completed", "early_stopped", "early_stopped", "completed",
                                    "completed", "completed", "diverged", "completed"],
                         "test_error": [0.30, 0.32, 0.20, 0.22, 0.40, 0.42, 0.9, 0.1]})
    groups = group(runs, ["optim.lr"], ["test_error"])
    assert groups["status"].tolist()[:2] == ["1 completed, 1 early_stopped"] * 2
    ordered = sort_runs(groups, "test_error")
    assert ordered["optim.lr"].tolist() == [0.2, 0.1, 0.3, 0.4]  # the group with a diverged run last



def test_a_figure_is_written_in_the_format_of_its_extension(sweep, tmp_path):
    for name, starts in (("grid.svg", b"<?xml"), ("grid.pdf", b"%PDF"), ("grid.png", b"\x89PNG")):
        ok(invoke("compare", sweep[0], "--pivot", "optim.batch_size,optim.lr", "--plot", tmp_path / name))
        assert (tmp_path / name).read_bytes().startswith(starts), name
    message = user_error(invoke("compare", sweep[0], "--plot", tmp_path / "grid.jpg"))
    assert "grid.jpg: a figure is written as .png, .svg, .pdf, by its extension" in message
    assert not (tmp_path / "grid.jpg").exists()

"""The config layer through its Python API: shipped configs, defaults, overrides, paths, round trips."""
from __future__ import annotations

import re
from pathlib import Path

import pytest
import yaml

from conftest import CONFIGS, tiny_config
from image_files import trust_files, write_image_set  # noqa: F401 (a fixture)
from dlcli.config.flat import config_hash, to_yaml
from dlcli.config.load import experiment_from_dict, load_experiment
from dlcli.config.data_params import IMAGE_SETS
from dlcli.config.schema import Experiment
from dlcli.errors import UserError

SHIPPED = sorted(CONFIGS.glob("*.yaml"))


def test_there_are_shipped_configs():
    assert len(SHIPPED) >= 5, SHIPPED


# ---- every shipped config validates, loads its data and builds its model -------------------------


@pytest.mark.parametrize("path", SHIPPED, ids=lambda path: path.name)
def test_shipped_config_validates_and_prepares(path: Path, monkeypatch, tmp_path, tmp_path_factory, trust_files):
    from dlcli.components.prepare import prepare

    monkeypatch.chdir(tmp_path)  # data paths start at the config's folder, not the working directory
    experiment = load_experiment(path)
    assert isinstance(experiment, Experiment)
    if experiment.data.name in IMAGE_SETS:  # nothing downloads: a tiny copy in the set's own format
        root = tmp_path_factory.mktemp("images")
        write_image_set(root, experiment.data.name)
        experiment = load_experiment(path, [f"data.root={root}", "data.n_train=null", "data.n_test=null"])
    prepared = prepare(experiment)
    assert len(prepared.dataset.x_train) > 0 and len(prepared.dataset.x_test) > 0
    assert len(prepared.dataset.x_train) == len(prepared.dataset.y_train)
    assert len(prepared.dataset.x_test) == len(prepared.dataset.y_test)
    assert sum(p.numel() for p in prepared.model.parameters()) > 0
    assert list(tmp_path.iterdir()) == []  # validating and preparing writes nothing


@pytest.mark.parametrize("path", SHIPPED, ids=lambda path: path.name)
def test_shipped_config_opens_with_a_comment_naming_its_run_command(path: Path):
    lines = path.read_text(encoding="utf-8").splitlines()
    assert lines and lines[0].startswith("#"), f"{path.name} must open with a # comment"
    header = []
    for line in lines:
        if not line.startswith("#"):
            break
        header.append(line)
    pattern = rf"^#\s*Run: dlcli (train|sweep|bias-variance) configs/{re.escape(path.name)}(\s|$)"
    assert any(re.match(pattern, line) for line in header), header


# ---- defaults and names --------------------------------------------------------------------------


def test_an_empty_mapping_is_a_valid_experiment_named_after_the_file(write_config):
    path = write_config("{}\n", name="my-exp.yaml")
    experiment = load_experiment(path)
    assert experiment.name == "my-exp"
    defaults = Experiment().model_dump(mode="json")
    loaded = experiment.model_dump(mode="json")
    for section in ("seed", "device", "model", "loss", "optim", "regularization", "train"):
        assert loaded[section] == defaults[section], section
    # data.params is filled with the chosen data set's own defaults
    assert loaded["data"]["params"], loaded["data"]


def test_a_name_in_the_file_wins_over_the_file_name(write_config):
    assert load_experiment(write_config(tiny_config(name="abc"), name="other.yaml")).name == "abc"


def test_data_params_defaults_are_filled_in(write_config):
    config = tiny_config(data={"name": "gaussians", "params": {"classes": 3}})
    params = load_experiment(write_config(config)).data.params
    assert params["classes"] == 3
    assert {"dim", "separation", "sigma"} <= set(params)


# ---- problems: all of them, each naming the file and the dotted key ------------------------------


def test_every_problem_is_reported_at_once_with_file_and_key(write_config):
    config = tiny_config()
    config["optim"] = {"name": "sgd", "lrr": 0.1, "batch_size": 0}
    config["train"] = {"epochs": 2.5}
    config["model"] = {"name": "resnet"}
    path = write_config(config)
    with pytest.raises(UserError) as caught:
        load_experiment(path)
    problems = caught.value.problems
    assert len(problems) == 4, problems
    for key in ("optim.lrr", "optim.batch_size", "train.epochs", "model.name"):
        assert any(problem.startswith(f"{path}: {key}:") for problem in problems), (key, problems)


def test_a_problem_from_an_override_names_set_not_the_file(write_config):
    path = write_config(tiny_config())
    with pytest.raises(UserError) as caught:
        load_experiment(path, ["optim.lr=-1"])
    assert len(caught.value.problems) == 1
    problem = caught.value.problems[0]
    assert problem.startswith("--set optim.lr"), problem
    assert str(path) not in problem


def test_booleans_are_not_numbers(write_config):
    config = tiny_config(optim={"name": "sgd", "lr": True, "batch_size": 32})
    with pytest.raises(UserError) as caught:
        load_experiment(write_config(config))
    assert len(caught.value.problems) == 1
    assert "optim.lr" in caught.value.problems[0]


def test_python_yaml_tags_are_refused_without_running_anything(write_config, tmp_path):
    marker = tmp_path / "marker"
    path = write_config(f'name: !!python/object/apply:os.system ["touch {marker}"]\n')
    with pytest.raises(UserError) as caught:
        load_experiment(path)
    assert not marker.exists()
    assert str(path) in caught.value.problems[0]
    assert "python/object/apply:os.system" in caught.value.problems[0]


# ---- overrides -----------------------------------------------------------------------------------


def test_override_values_are_parsed_as_yaml(write_config):
    experiment = load_experiment(write_config(tiny_config()), [
        "model.hidden=[4,4]",
        "optim.batch_size=full",
        "optim.lr=0.05",
        "train.epochs=7",
        "data.standardize=false",
    ])
    assert experiment.model.hidden == [4, 4]
    assert experiment.optim.batch_size == "full"
    assert experiment.optim.lr == 0.05
    assert experiment.train.epochs == 7 and isinstance(experiment.train.epochs, int)
    assert experiment.data.standardize is False


def test_overrides_create_missing_sections(write_config):
    experiment = load_experiment(write_config({"name": "x"}), ["regularization.l2=0.01"])
    assert experiment.regularization.l2 == 0.01


def test_overrides_do_not_change_the_callers_mapping():
    raw = tiny_config()
    before = yaml.safe_dump(raw)
    experiment_from_dict(raw, ["optim.lr=0.5", "model.hidden=[3]"])
    assert yaml.safe_dump(raw) == before


# ---- data paths ----------------------------------------------------------------------------------


def test_relative_data_paths_start_at_the_config_folder(tmp_path, monkeypatch):
    folder = tmp_path / "project"
    (folder / "data").mkdir(parents=True)
    table = folder / "data" / "table.csv"
    table.write_text("a,b,label\n0,1,x\n1,0,y\n1,1,x\n0,0,y\n")
    config = tiny_config(data={"name": "csv", "params": {"path": "data/table.csv", "target": "label"}})
    (folder / "experiment.yaml").write_text(yaml.safe_dump(config))
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    experiment = load_experiment(folder / "experiment.yaml")
    assert Path(experiment.data.params["path"]) == table.resolve()


def test_a_missing_data_file_names_the_key_and_the_file(write_config, tmp_path):
    config = tiny_config(data={"name": "csv", "params": {"path": "no/such/table.csv"}})
    path = write_config(config)
    with pytest.raises(UserError) as caught:
        load_experiment(path)
    [problem] = caught.value.problems
    assert problem.startswith(f"{path}: data.params.path:"), problem
    assert str((tmp_path / "no/such/table.csv").resolve()) in problem


# ---- the resolved config -------------------------------------------------------------------------


def test_the_resolved_config_loads_back_to_an_equal_experiment(write_config, tmp_path):
    original = load_experiment(write_config(tiny_config()), ["model.hidden=[5,3]"])
    resolved = tmp_path / "resolved" / "config.yaml"
    resolved.parent.mkdir()
    resolved.write_text(to_yaml(original))
    again = load_experiment(resolved)
    assert again == original
    assert config_hash(again) == config_hash(original)


def test_config_hash_tells_different_experiments_apart(write_config):
    path = write_config(tiny_config())
    assert config_hash(load_experiment(path)) == config_hash(load_experiment(path))
    assert config_hash(load_experiment(path)) != config_hash(load_experiment(path, ["optim.lr=0.2"]))

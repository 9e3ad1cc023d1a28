"""The README is the user's manual: these tests keep it true to the code."""
from __future__ import annotations

import re
import typing

from pydantic import BaseModel

from dlcli.config import schema as config
from dlcli.cli import app
from conftest import CONFIGS, REPO

README = (REPO / "README.md").read_text(encoding="utf-8")


def readme_commands() -> list[str]:
    return re.findall(r"```bash\n(.*?)\n```", README, flags=re.S)


def test_readme_opens_with_install_and_test_commands_and_ci_runs_the_test_command():
    first, second = readme_commands()[:2]
    assert "pip install" in first and "dlcli train configs/quickstart.yaml" in first
    assert "pip install" in second and "pytest" in second
    ci_script = (REPO / ".ci" / "run").read_text(encoding="utf-8")
    assert second in ci_script.splitlines()


def test_every_command_is_documented_in_the_readme():
    names = [command.name or command.callback.__name__ for command in app.registered_commands]
    assert names
    for name in names:
        assert f"dlcli {name}" in README, name


def test_every_option_of_every_command_is_documented_in_the_readme():
    import typer

    commands = typer.main.get_command(app).commands
    missing = [f"dlcli {name} {option}" for name, command in commands.items() for parameter in command.params
               for option in [*parameter.opts, *getattr(parameter, "secondary_opts", [])]
               if option.startswith("--") and option not in README]
    assert len(commands) >= 7
    assert not missing


def _dotted_keys(model, prefix=""):
    for name, field in model.model_fields.items():
        annotation = field.annotation
        if isinstance(annotation, type) and issubclass(annotation, BaseModel):
            yield from _dotted_keys(annotation, f"{prefix}{name}.")
        else:
            yield prefix + name


def test_config_reference_lists_every_key_with_its_default():
    rows = dict(re.findall(r"^\| `([\w.]+)` \| (.*?) \|", README, flags=re.M))
    defaults = config.Experiment().model_dump(mode="json")
    for key in _dotted_keys(config.Experiment):
        assert key in rows, f"{key} missing from the config reference"
        value = defaults
        for part in key.split("."):
            value = value[part]
        if key != "name":  # the name defaults to the config file's name
            shown = "null" if value is None else str(value).replace("'", "").lower()
            assert shown in rows[key].lower(), f"{key}: default {shown} not in {rows[key]!r}"


def test_every_data_set_has_its_params_documented():
    for name, schema in config.DATA_PARAMS.items():
        row = re.search(rf"^\| `{name}` \| (.*)$", README, flags=re.M)
        assert row, name
        for param in schema.model_fields:
            assert param in row.group(1), f"data.params.{param} of {name} undocumented"


def test_every_shipped_config_is_listed_in_the_readme():
    for path in CONFIGS.glob("*.yaml"):
        assert f"`{path.name}`" in README, path.name


def test_registries_match_the_names_the_config_allows():
    from dlcli.components.datasets import DATASETS
    from dlcli.components.losses import LOSSES
    from dlcli.components.models import ACTIVATIONS, MODELS
    from dlcli.components.optimizers import OPTIMIZERS

    allowed = lambda model, field: set(typing.get_args(model.model_fields[field].annotation))  # noqa: E731
    assert set(DATASETS) == set(config.DATA_PARAMS) == set(typing.get_args(config.DataName))
    assert set(MODELS) == allowed(config.ModelConfig, "name")
    assert set(ACTIVATIONS) == allowed(config.ModelConfig, "activation")
    assert set(LOSSES) == allowed(config.Experiment, "loss")
    assert set(OPTIMIZERS) == allowed(config.OptimConfig, "name")

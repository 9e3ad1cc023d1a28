"""The documentation stays true to the code: the reference pages under docs/ are generated from it
(`python docs/generate.py`), and the README names every command and, with docs/, every shipped config."""
from __future__ import annotations

import importlib.util
import json
import re
import typing

import pytest
import typer
from pydantic import BaseModel

from dlcli.cli import app
from dlcli.config import data_params, schema as config
from dlcli.config.data_params import DATA_PARAMS, DataName
from dlcli.config.sweep import SweepSection
from conftest import CONFIGS, REPO

DOCS = REPO / "docs"
README = (REPO / "README.md").read_text(encoding="utf-8")
COMMANDS_PAGE = (DOCS / "commands.md").read_text(encoding="utf-8")
CONFIG_PAGE = (DOCS / "config.md").read_text(encoding="utf-8")
COMMANDS = typer.main.get_command(app).commands


def load_generator():
    """docs/generate.py is a script, not a module of the package: import it from its path."""
    spec = importlib.util.spec_from_file_location("docs_generate", DOCS / "generate.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def readme_commands() -> list[str]:
    return re.findall(r"```bash\n(.*?)\n```", README, flags=re.S)


def test_readme_opens_with_install_and_test_commands_and_ci_runs_the_test_command():
    first, second = readme_commands()[:2]
    assert "pip install" in first and "dlcli train configs/quickstart.yaml" in first
    assert "pip install" in second and "pytest" in second
    ci_script = (REPO / ".ci" / "run").read_text(encoding="utf-8")
    assert second in ci_script.splitlines()


@pytest.mark.parametrize("page, function", [("commands.md", "commands_markdown"), ("config.md", "config_markdown")])
def test_reference_pages_are_what_the_generator_writes_from_the_code(page, function):
    generated = getattr(load_generator(), function)()
    written = (DOCS / page).read_text(encoding="utf-8")
    assert generated == written, f"docs/{page} is out of date with the code: run `python docs/generate.py`"


def test_every_command_and_option_is_in_the_command_reference():
    assert len(COMMANDS) >= 7
    missing = [f"dlcli {name}" for name in COMMANDS if f"## dlcli {name}\n" not in COMMANDS_PAGE]
    missing += [f"dlcli {name} {option}" for name, command in COMMANDS.items() for parameter in command.params
                for option in [*parameter.opts, *getattr(parameter, "secondary_opts", [])]
                if option.startswith("--") and option not in COMMANDS_PAGE]
    assert not missing


def test_every_command_is_named_in_the_readme():
    missing = [name for name in COMMANDS if f"dlcli {name}" not in README]
    assert not missing


def dotted_keys(model: type[BaseModel], prefix: str = ""):
    for name, field in model.model_fields.items():
        annotation = field.annotation
        if isinstance(annotation, type) and issubclass(annotation, BaseModel):
            yield from dotted_keys(annotation, f"{prefix}{name}.")
        else:
            yield prefix + name


def table_rows(markdown: str) -> dict[str, str]:
    """{first cell without backticks: the rest of the row}; the first row wins when a key repeats."""
    rows = {}
    for key, rest in re.findall(r"^\| `([\w.]+)` \| (.*)$", markdown, flags=re.M):
        rows.setdefault(key, rest)
    return rows


def shown(value) -> str:
    """A default as the reference shows it: as YAML would write it, in backticks."""
    return f"`{value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)}`"


def test_config_reference_lists_every_key_with_its_default():
    rows = table_rows(CONFIG_PAGE.split("\n## data.params")[0])
    defaults = config.Experiment().model_dump(mode="json")
    for key in dotted_keys(config.Experiment):
        assert key in rows, f"{key} missing from docs/config.md"
        value = defaults
        for part in key.split("."):
            value = value[part]
        assert shown(value) in rows[key], f"{key}: default {shown(value)} not in {rows[key]!r}"


def all_config_models() -> list[type[BaseModel]]:
    """Every model of the schema (sections, batch schedule, data-set parameters) and the sweep section."""
    models = [value for module in (config, data_params) for value in vars(module).values()
              if isinstance(value, type) and issubclass(value, BaseModel) and value.model_fields]
    return [*dict.fromkeys(models), SweepSection]


def test_every_config_field_has_a_description():
    models = all_config_models()
    assert {config.Experiment, config.BatchSchedule, data_params.CsvParams, SweepSection} <= set(models)
    undescribed = [f"{model.__name__}.{name}" for model in models for name, field in model.model_fields.items()
                   if not (field.description or "").strip()]
    assert not undescribed, "add Field(description=...) to: " + ", ".join(undescribed)


def test_every_data_set_has_its_params_documented():
    params_section = CONFIG_PAGE.split("\n## data.params\n")[1].split("\n## ")[0]
    for name, schema in DATA_PARAMS.items():
        assert f"\n### `{name}`\n" in params_section, f"data set {name} missing from docs/config.md"
        rows = table_rows(params_section.split(f"\n### `{name}`\n")[1].split("\n### ")[0])
        for param, field in schema.model_fields.items():
            assert param in rows, f"data.params.{param} of {name} undocumented"
            default = "required" if field.is_required() else shown(field.default)
            assert default in rows[param], f"data.params.{param} of {name}: default {default} not in {rows[param]!r}"


def test_every_shipped_config_is_named_in_the_readme_or_the_docs():
    texts = [README, *(path.read_text(encoding="utf-8") for path in DOCS.glob("*.md"))]
    unnamed = [path.name for path in CONFIGS.glob("*.yaml") if not any(path.name in text for text in texts)]
    assert not unnamed


def test_registries_match_the_names_the_config_allows():
    from dlcli.components.datasets import DATASETS
    from dlcli.components.losses import LOSSES
    from dlcli.components.models import ACTIVATIONS, MODELS
    from dlcli.components.optimizers import OPTIMIZERS

    allowed = lambda model, field: set(typing.get_args(model.model_fields[field].annotation))  # noqa: E731
    assert set(DATASETS) == set(DATA_PARAMS) == set(typing.get_args(DataName))
    assert set(MODELS) == allowed(config.ModelConfig, "name")
    assert set(ACTIVATIONS) == allowed(config.ModelConfig, "activation")
    assert set(LOSSES) == allowed(config.Experiment, "loss")
    assert set(OPTIMIZERS) == allowed(config.OptimConfig, "name")


def test_the_readme_stays_a_short_manual():
    """What, why, set-up, a first experiment and links: the reference lives in docs/."""
    assert len(README.encode("utf-8")) <= 12 * 1024, "move detail from README.md to a page under docs/"

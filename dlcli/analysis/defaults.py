"""The keys a person set: of the keys the runs share, those whose value is not the schema's default (for
the runs' data set and model, whose own parameters have their own defaults). The data set's and the
model's names are always shown: they say what the runs are."""
from __future__ import annotations

from typing import Any

from dlcli.analysis.compare import group_value, hashable
from dlcli.config.flat import flat_config
from dlcli.config.load import experiment_from_dict
from dlcli.errors import UserError

ALWAYS = ("name", "data.name", "model.name")


def away_from_defaults(constant: dict[str, Any]) -> dict[str, Any]:
    """The keys of `constant` (a flat config's) to show: ALWAYS, and those whose value is not the default;
    a key the schema does not know (a data set's parameters under another data set) counts as set."""
    defaults = _defaults({"data": {"name": constant.get("data.name")}, "model": {"name": constant.get("model.name")}})
    return {key: value for key, value in constant.items()
            if key in ALWAYS or key not in defaults or group_value(value) != group_value(hashable(defaults[key]))}


def _defaults(sections: dict[str, Any]) -> dict[str, Any]:
    """The flat defaults with this data set and model; the plain defaults when those are not a config on
    their own (a data set that needs a file's path)."""
    for tried in (sections, {}):
        try:
            return flat_config(experiment_from_dict({"name": "defaults", **tried}))
        except (UserError, ValueError, TypeError):
            continue
    return {}

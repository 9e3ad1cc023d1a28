"""How numbers and config values read in tables, labels and figures: the one formatter."""
from __future__ import annotations

from typing import Any


def number_text(value: Any, decimals: int = 4) -> str:
    """A metric: fixed decimals, `-` for missing, scientific past 1e5 (a diverged loss can be 1e30)."""
    if value is None or value != value:
        return "-"
    if isinstance(value, int):
        return str(value)
    return f"{value:.{decimals}f}" if abs(value) < 1e5 else f"{value:.2e}"


def value_text(value: Any, digits: int = 6) -> str:
    """A config value or a key's value in a label: shortest form of a float (to `digits` significant
    digits), `null` for None."""
    if value is None:
        return "null"
    if isinstance(value, float) and value != value:
        return "-"
    return f"{value:.{digits}g}" if isinstance(value, float) else str(value)


def label_of(row: Any, keys: list[str]) -> str:
    """`lr=0.1, batch_size=32`: the values of the keys that tell runs apart, by their short names."""
    names = short_names(keys)
    return ", ".join(f"{names[key]}={value_text(row[key])}" for key in keys) or str(row.get("run_id", ""))


def trial_name(trial: Any, chosen: bool) -> str:
    """`★ trial 3` for the trial a search chose, `trial 5` for another."""
    return f"{'★ ' if chosen else ''}trial {int(trial)}"


def short_names(keys: list[str]) -> dict[str, str]:
    """The shortest dotted suffix that tells each key apart: regularization.early_stopping.patience -> patience."""
    names = {}
    for key in keys:
        parts = key.split(".")
        for size in range(1, len(parts) + 1):
            suffix = ".".join(parts[-size:])
            if sum(other == suffix or other.endswith("." + suffix) for other in keys) == 1:
                names[key] = suffix
                break
        else:
            names[key] = key
    return names

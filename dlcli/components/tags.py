"""Tags and a note on runs (`dlcli tag`), kept in tags.json beside summary.json: labels to find runs
by (`dlcli compare ROOT --where tag.KEY=VALUE`, `dlcli runs`). They are not config: a run's config,
its config hash and every file training wrote stay as they were.

tags.json is `{"tags": {key: value}, "note": text or null}`. Values are kept as the text given;
`compare.load_runs` reads them as --where reads values, so `tag.epochs=10` is the number 10.
"""
from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any, Iterable

from dlcli import layout
from dlcli.errors import UserError

TAG_PREFIX = "tag."  # a tag's column in compare.load_runs: tag.KEY
KEY = re.compile(r"[A-Za-z0-9_.-]+")


def read_tags(run_dir: str | Path) -> dict[str, Any]:
    """A run's tags.json: {"tags": {key: value text}, "note": text or None}; empty when it has none."""
    path = Path(run_dir) / layout.TAGS
    if not path.is_file():
        return {"tags": {}, "note": None}
    try:
        content = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as error:
        raise UserError(f"{path}: not readable as JSON ({error})") from None
    if not isinstance(content, dict) or not isinstance(content.get("tags", {}), dict):
        raise UserError(f'{path}: expected {{"tags": {{KEY: VALUE}}, "note": TEXT}}')
    note = content.get("note")
    return {"tags": {str(key): _text(value) for key, value in content.get("tags", {}).items()},
            "note": None if note is None else str(note)}


def tag_runs(run_dirs: Iterable[str | Path], assignments: list[str], note: str | None = None) -> dict[Path, dict]:
    """Set tags on runs: each assignment KEY=VALUE (an empty VALUE removes the tag), and the note
    unless `note` is None ("" removes it). Every run and assignment is checked, and every tags.json
    read, before the first is written. Returns each run's new tags.json content."""
    runs = check_run_dirs(run_dirs)
    changes = parse_assignments(assignments)
    if not changes and note is None:
        raise UserError("nothing to set: give KEY=VALUE assignments or --note TEXT")
    current = {run: read_tags(run) for run in runs}
    return {run: write_tags(run, changes, note, content) for run, content in current.items()}


def write_tags(run_dir: Path, changes: dict[str, str], note: str | None = None,
               current: dict[str, Any] | None = None) -> dict[str, Any]:
    """Set these tags on one run (an empty value removes a tag), and the note unless it is None;
    returns the new tags.json content (`dlcli tag`, and `--tag` as a run starts)."""
    content = read_tags(run_dir) if current is None else current
    tags = {key: value for key, value in {**content["tags"], **changes}.items() if value != ""}
    new = {"tags": tags, "note": content["note"] if note is None else (note or None)}
    layout.atomic_write_json(Path(run_dir) / layout.TAGS, new)
    return new


def parse_assignments(assignments: list[str], option: str = "") -> dict[str, str]:
    """KEY=VALUE items as {key: value}; a key is letters, digits, `_`, `-` and `.`. A problem names
    the `option` the item came with."""
    parsed, problems = {}, []
    for item in assignments:
        key, equals, value = item.partition("=")
        if not equals or not KEY.fullmatch(key):
            where = f"{option} {item}" if option else item
            problems.append(f"{where}: expected KEY=VALUE with a KEY of letters, digits, _, - and . "
                            "(e.g. baseline=true)")
        else:
            parsed[key] = value.strip()
    if problems:
        raise UserError(problems)
    return parsed


def check_run_dirs(paths: Iterable[str | Path]) -> list[Path]:
    """The paths, each a run folder (holding summary.json), else a UserError naming every other one."""
    paths = [Path(path) for path in paths]
    problems = [f"{path}: no such file or directory" if not path.exists() else
                f"{path}: not a run folder (no {layout.SUMMARY})"
                for path in paths if not (path / layout.SUMMARY).is_file()]
    if problems:
        raise UserError(problems)
    if not paths:
        raise UserError("no run folder given")
    return list(dict.fromkeys(paths))


def _text(value: Any) -> str:
    """A value written by hand into tags.json as the text `dlcli tag` would have stored."""
    return value if isinstance(value, str) else json.dumps(value)

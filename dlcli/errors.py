"""The one exception for mistakes the user made (bad config, bad arguments, missing files).

The CLI turns it into one line per problem and exit status 2; anything else is a bug and raises.
"""
from __future__ import annotations


class UserError(Exception):
    """One or more problems in what the user asked for, each a self-contained line."""

    def __init__(self, problems: list[str] | str):
        self.problems = [problems] if isinstance(problems, str) else list(problems)
        super().__init__("\n".join(self.problems))


def prefixed(source: str | None, key: str, message: str) -> str:
    """Format one problem as `source: key: message` (`--set key: message`), leaving out what is unknown."""
    if source in ("--set", "--device", "sweep"):
        return f"{source} {key}: {message}"
    parts = [part for part in (source, key) if part]
    return ": ".join([*parts, message])

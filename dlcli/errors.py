"""The one exception for mistakes the user made (bad config, bad arguments, missing files).

The CLI turns it into one line per problem and exit status 2; anything else is a bug and raises.
"""
from __future__ import annotations


class UserError(Exception):
    """One or more problems in what the user asked for, each a self-contained line."""

    def __init__(self, problems: list[str] | str):
        self.problems = [one_line(problem) for problem in ([problems] if isinstance(problems, str) else problems)]
        super().__init__("\n".join(self.problems))


LINE_BREAKS = "\n\r\v\f\x1c\x1d\x1e\x85\u2028\u2029"  # what str.splitlines splits at


def one_line(problem: str) -> str:
    """A problem is one line: a line break inside it (in a key or a value quoted from the input) is
    shown escaped, as \\n."""
    return "".join(ascii(char)[1:-1] if char in LINE_BREAKS else char for char in problem)


def prefixed(source: str | None, key: str, message: str) -> str:
    """Format one problem as `source: key: message` (`--set key: message`), leaving out what is unknown."""
    if source == "--device":  # the option is the key
        return f"--device: {message}"
    if source in ("--set", "sweep"):
        return f"{source} {key}: {message}"
    parts = [part for part in (source, key) if part]
    return ": ".join([*parts, message])

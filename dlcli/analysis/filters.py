"""`--where COLUMN OP VALUE`: which runs compare, report, export and runs keep. The value is read as
on the command line elsewhere (YAML, and `1e-3` a number); an order (< <= > >=) against a column of
numbers needs a number, else the expression is refused rather than matching nothing."""
from __future__ import annotations

import operator
import re
from typing import Any

import pandas as pd

from dlcli.analysis.compare import check_columns, hashable, parse_value
from dlcli.components.tags import TAG_PREFIX
from dlcli.config.load import scientific_number
from dlcli.errors import UserError

OPERATORS = {"==": operator.eq, "=": operator.eq, "!=": operator.ne, ">=": operator.ge, "<=": operator.le,
             ">": operator.gt, "<": operator.lt}
ORDERS = (">=", "<=", ">", "<")
EXPRESSION = re.compile(r"\s*([\w.-]+)\s*(==|!=|>=|<=|=|>|<)\s*(.+?)\s*")


def where(frame: pd.DataFrame, expressions: list[str]) -> pd.DataFrame:
    """Keep the rows where every `COLUMN OP VALUE` holds (OP: == != >= <= > <)."""
    for expression in expressions:
        found = EXPRESSION.fullmatch(expression)
        if not found:
            raise UserError(f"--where {expression}: expected COLUMN OP VALUE, e.g. optim.lr>=0.1 "
                            "(OP: == != >= <= > <)")
        column, symbol, text = found.groups()
        if column.startswith(TAG_PREFIX) and column not in frame.columns:
            frame = frame.assign(**{column: None})  # a tag no run has: no run has that value
        check_columns(frame, [column], "--where")
        if text[:1] in "<>=!":  # `lr=<0.1`: an operator misspelled, not a value
            raise UserError(f"--where {expression}: {symbol}{text[0]} is not an operator (OP: == != >= <= > <)")
        value = where_value(text)
        if symbol in ORDERS and not is_number(value) and frame[column].map(is_number).any():
            raise UserError(f"--where {expression}: {text} is not a number, and {column} holds numbers; "
                            f"allowed: {column}{symbol}NUMBER (OP: == != >= <= > <)")
        frame = frame[frame[column].map(lambda cell: holds(OPERATORS[symbol], cell, value, symbol))]
    return frame


def where_value(text: str) -> Any:
    """The value as YAML reads it, `1e-3` a number (YAML 1.1 reads it as text), a list as its cell text."""
    number = scientific_number(text)
    return number if number is not None else hashable(parse_value(text))


def is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and value == value


def holds(compare, cell: Any, value: Any, symbol: str) -> bool:
    try:
        return bool(compare(cell, value))
    except TypeError:  # e.g. 'full' > 32: not comparable, so not selected
        return symbol == "!="

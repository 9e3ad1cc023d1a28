"""Tables that fit the terminal. Where it is wide enough a table keeps rich's box; narrower, it drops the
box's rules and padding first (`compact`), then takes the next of the forms its maker offers (fewer
columns, shorter headers, another layout), which says what it changed. rich would otherwise squeeze
the columns and cut their text, and a cut number ("0.7…") reads as another number.
"""
from __future__ import annotations

from typing import Callable, Iterable

from rich import box
from rich.table import Table

from dlcli.report.console import console

Form = tuple[Callable[[], Table], str | None]  # a table's maker, and what to say when it is the one shown


def fitted(forms: Iterable[Form]) -> tuple[Table, str | None]:
    """The first form that fits the terminal, boxed or compact, with its note; the last, compact, when
    none does."""
    table, note = None, None
    for make, note in forms:
        table = make()
        if fits(table) or fits(compact(table)):
            return table, note
    if table is None:
        raise ValueError("fitted: no form of the table to show")
    return table, note


def fits(table: Table) -> bool:
    return console.measure(table, options=console.options.update(max_width=10**6)).maximum <= console.width


def compact(table: Table) -> Table:
    """The same table with only the rule under its header, one space between columns."""
    table.box, table.collapse_padding, table.pad_edge = box.SIMPLE_HEAD, True, False
    return table


def print_fitted(forms: Iterable[Form]) -> None:
    table, note = fitted(forms)
    console.print(table)
    if note:
        console.print(f"[dim]{note}[/]")

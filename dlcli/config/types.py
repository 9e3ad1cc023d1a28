"""The building blocks every config model shares: a section that rejects unknown keys, and numbers
that refuse booleans."""
from __future__ import annotations

from typing import Annotated, Any

from pydantic import BaseModel, BeforeValidator, ConfigDict


def _reject_bool(value: Any) -> Any:
    # pydantic's lax mode reads `true` as 1; in a config that is always a mistake.
    if isinstance(value, bool):
        raise ValueError("expected a number, got a boolean")
    return value


Number = Annotated[float, BeforeValidator(_reject_bool)]
Integer = Annotated[int, BeforeValidator(_reject_bool)]


class Section(BaseModel):
    model_config = ConfigDict(extra="forbid", validate_default=True, allow_inf_nan=False)

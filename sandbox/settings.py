"""Operator settings read from the environment (documented in README's Configuration)."""
from __future__ import annotations

import math
import os
from collections.abc import Callable
from typing import TypeVar

Number = TypeVar("Number", int, float)


def positive_from_env(name: str, default: Number, parse: Callable[[str], Number]) -> Number:
    """$name parsed as a positive finite number, or `default` when unset or empty."""
    value = os.environ.get(name, "").strip()
    if not value:
        return default
    try:
        parsed = parse(value)
    except ValueError:
        raise ValueError(f"{name} must be a number, got {value!r}") from None
    if not (parsed > 0 and math.isfinite(parsed)):
        raise ValueError(f"{name} must be a positive number, got {value!r}")
    return parsed


def count_from_env(name: str, default: int) -> int:
    """$name parsed as a whole number >= 0, or `default` when unset or empty."""
    value = os.environ.get(name, "").strip()
    if not value:
        return default
    if not value.isdigit():
        raise ValueError(f"{name} must be a whole number >= 0, got {value!r}")
    return int(value)

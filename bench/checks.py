"""The value checks that bench/config.py and bench/strategies.py share: each raises `ConfigError` with one line
that names the key, the bad value and what is allowed. A module of its own so that both import it, and neither
the other, for it."""

from __future__ import annotations

import math
from typing import Any

from bench.config_error import ConfigError

OPTIMIZERS = ("sgd", "adam")  # train.optimizer, and an init's own training (the autoencoder's init.optimizer)


def one_of(key: str, value: Any, allowed: tuple) -> None:
    if value not in allowed:
        raise ConfigError(key, value, "allowed values are " + ", ".join(allowed))


def positive(key: str, value: float, strict: bool = True) -> None:
    if value is None or not math.isfinite(value) or value < 0 or (strict and value == 0):
        raise ConfigError(key, value, "must be a finite number " + ("> 0" if strict else ">= 0"))


def between(key: str, value: float, low: float, high: float, closed: str = "()") -> None:
    """value in the interval from low to high, each end open or closed as `closed` ("()", "[)", "[]")."""
    ok = (
        value is not None
        and math.isfinite(value)
        and (value >= low if closed[0] == "[" else value > low)
        and (value <= high if closed[1] == "]" else value < high)
    )
    if not ok:
        raise ConfigError(key, value, f"must be in {closed[0]}{low:g}, {high:g}{closed[1]}")


def batch(key: str, value: int, pool: int, data: Any) -> None:
    """An init's batch drawn from the unlabeled pool of `data` (a data config): a larger one would silently be
    the whole pool."""
    if value is None or not 1 <= value <= pool:
        raise ConfigError(key, value, f"must be in [1, {pool}] (the unlabeled pool: {pool} examples of {data.name})")

"""The error every config check raises. Its own module, with no imports from the package, so that the
modules bench/config.py reads its registries from (bench/datasets.py) can raise it without importing
bench/config.py back."""

from __future__ import annotations

from typing import Any


class ConfigError(ValueError):
    """A config value that cannot run. The message is one line: key, bad value, what is allowed."""

    def __init__(self, key: str, value: Any, allowed: str):
        super().__init__(f"{key}={value!r} is invalid: {allowed}")
        self.key, self.value, self.allowed = key, value, allowed

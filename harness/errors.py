"""Errors for bad input: each says what was tried, what happened and what to do."""

from __future__ import annotations

import difflib
from collections.abc import Iterable

__all__ = ["ConfigError", "HarnessError", "did_you_mean"]


class HarnessError(Exception):
    """Base class for user-facing errors (exit code 2); never a traceback."""


class ConfigError(HarnessError):
    """A flag, environment variable, model config or file is invalid."""


def did_you_mean(word: str, choices: Iterable[str]) -> str:
    """A ` Did you mean 'x'?` suffix for the closest choice, or ""."""
    match = difflib.get_close_matches(word, list(choices), n=1)
    return f" Did you mean {match[0]!r}?" if match else ""

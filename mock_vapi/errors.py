"""Errors for bad input: each says what was tried, what happened and what to do."""

from __future__ import annotations

import difflib
from collections.abc import Iterable

__all__ = ["ConfigError", "HarnessError", "did_you_mean"]


class HarnessError(Exception):
    """Base class for user-facing errors (exit code 2); never a traceback."""


class ConfigError(HarnessError):
    """A flag, environment variable, model config or file is invalid."""


def did_you_mean(word: str, choices: Iterable[str], *, cutoff: float = 0.5) -> str:
    """A ` Did you mean 'x'?` suffix for the closest choice (ignoring case), or "" when none is that close.

    `cutoff` is difflib's similarity floor; 0 always names the closest.
    """
    lowered = {choice.lower(): choice for choice in choices}
    match = difflib.get_close_matches(word.lower(), list(lowered), n=1, cutoff=cutoff)
    return f" Did you mean {lowered[match[0]]!r}?" if match else ""

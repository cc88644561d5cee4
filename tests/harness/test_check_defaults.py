"""`check`'s options take their defaults from the values they override, never from a copy."""

from __future__ import annotations

from dataclasses import fields

from harness.checks import Thresholds
from harness.cli.check import OPTIONS


def test_the_budget_options_default_to_the_thresholds() -> None:
    defaults = {option.dest: option.default for option in OPTIONS}
    budgets = {f.name: f.default for f in fields(Thresholds) if f.name in defaults}
    assert budgets.keys() == {"max_stall_ms", "first_sentence_ms"}
    assert all(defaults[name] == value for name, value in budgets.items())

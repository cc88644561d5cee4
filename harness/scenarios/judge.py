"""Judging a played turn against its expectations: what was said, the tools called, how the call went, timing."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any

from mock_vapi.scenarios.model import Expectation
from mock_vapi.simulator import ToolRun, TurnRecord, turn_timing

__all__ = ["ExpectationResult", "judge_turn"]


@dataclass(frozen=True)
class ExpectationResult:
    """One expectation of one turn: `what` names it (`content.regex`, `tool_call`, `latency.ttft_ms`, ...)."""

    what: str
    passed: bool
    message: str


def _normal(text: str) -> str:
    return re.sub(r"\s+", " ", text).strip()


def _subset(expected: Any, actual: Any) -> bool:
    if isinstance(expected, dict):
        return isinstance(actual, dict) and all(k in actual and _subset(v, actual[k]) for k, v in expected.items())
    if isinstance(expected, list):
        return isinstance(actual, list) and len(expected) == len(actual) and all(map(_subset, expected, actual))
    return bool(expected == actual)


def _calls(runs: list[ToolRun]) -> str:
    if not runs:
        return "no tool call"
    return ", ".join(f"{r.name}({json.dumps(r.arguments, ensure_ascii=False)})" for r in runs)


def judge_turn(expect: Expectation, turn: TurnRecord) -> list[ExpectationResult]:
    """Every expectation set on the turn, passed or not, with a message that quotes what happened."""
    results: list[ExpectationResult] = []
    said = _normal(turn.spoken)
    quoted = json.dumps(said, ensure_ascii=False) if said else "nothing"
    content = expect.content
    if content is not None:
        ignore_case = content.ignore_case

        def fold(text: str) -> str:
            return text.casefold() if ignore_case else text

        if content.exact is not None:
            ok = fold(said) == fold(_normal(content.exact))
            results.append(ExpectationResult("content.exact", ok, f"expected exactly {content.exact!r}; said {quoted}"))
        if content.regex is not None:
            flags = re.IGNORECASE if content.ignore_case else 0
            ok = re.search(content.regex, said, flags) is not None
            results.append(
                ExpectationResult("content.regex", ok, f"expected a match for /{content.regex}/; said {quoted}")
            )
        for piece in content.contains:
            ok = fold(piece) in fold(said)
            results.append(ExpectationResult("content.contains", ok, f"expected {piece!r} in the reply; said {quoted}"))
        for piece in content.not_contains:
            ok = fold(piece) not in fold(said)
            results.append(
                ExpectationResult("content.not_contains", ok, f"expected no {piece!r} in the reply; said {quoted}")
            )
    if expect.tool_call is not None:
        want = expect.tool_call
        named = [r for r in turn.tool_runs if r.name == want.name]
        ok = any(want.arguments is None or _subset(want.arguments, r.arguments) for r in named)
        wanted = want.name + (f" with {json.dumps(want.arguments, ensure_ascii=False)}" if want.arguments else "")
        results.append(ExpectationResult("tool_call", ok, f"expected a call to {wanted}; got {_calls(turn.tool_runs)}"))
    if expect.no_tool_call:
        ok = not turn.tool_runs
        results.append(ExpectationResult("no_tool_call", ok, f"expected no tool call; got {_calls(turn.tool_runs)}"))
    if expect.ends_call is not None:
        ok = turn.ended_call == expect.ends_call
        state = "ended the call" if turn.ended_call else "did not end the call"
        results.append(
            ExpectationResult("ends_call", ok, f"expected ends_call: {expect.ends_call}; the assistant {state}")
        )
    if expect.transfers is not None:
        ok = (turn.transferred_to is not None) == expect.transfers
        state = f"transferred to {turn.transferred_to}" if turn.transferred_to else "did not transfer"
        results.append(
            ExpectationResult("transfers", ok, f"expected transfers: {expect.transfers}; the assistant {state}")
        )
    timing = turn_timing(turn)
    for name, budget in (
        ("ttft_ms", expect.ttft_ms),
        ("first_sentence_ms", expect.first_sentence_ms),
        ("total_ms", expect.total_ms),
    ):
        if budget is None:
            continue
        value = timing[name]
        if value is None:
            results.append(ExpectationResult(f"latency.{name}", False, f"budget {budget:g} ms; never reached"))
        else:
            over = value - budget
            message = f"{value:.0f} ms against a budget of {budget:g} ms" + (
                f" ({over:.0f} ms over)" if over > 0 else ""
            )
            results.append(ExpectationResult(f"latency.{name}", value <= budget, message))
    return results

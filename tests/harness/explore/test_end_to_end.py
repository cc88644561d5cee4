"""Done when: each input fault of the fake LLM, which the default suite never sets off, is found by `explore`,
shrunk to a small request of its class, and saved as a reproducer that fails `check --replay` against the fault
and passes against the built-in endpoint."""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import pytest

from harness.fake_llm import Fault
from harness.fake_llm.script import INPUT_FAULTS
from harness.fake_llm.triggers import (
    LONG_HISTORY_MESSAGES,
    LONG_TOOL_RESULT_CHARS,
    strings,  # the triggers' own walk over a message's texts
)
from harness.servers import ServerThread
from tests.conftest import CliRun

pytestmark = pytest.mark.slow

SHORT_TEXT = 40  # characters: what a shrunk message's text is at most, but for the trigger itself
FEW_MESSAGES = 10  # a system prompt, a few short past turns and the turn that sets the fault off


def _small(fault: Fault, body: Mapping[str, Any]) -> list[str]:
    """How the shrunk body is larger than it needs to be to set off `fault`."""
    problems = []
    messages = body["messages"]
    most = LONG_HISTORY_MESSAGES + 5 if fault is Fault.LONG_HISTORY_NO_CHOICES else FEW_MESSAGES
    if len(messages) > most:
        problems.append(f"{len(messages)} messages")
    for index, message in enumerate(messages):
        limit = LONG_TOOL_RESULT_CHARS * 2 if message.get("role") == "tool" else SHORT_TEXT
        longest = max((len(text) for text in strings(message.get("content"))), default=0)
        if longest > limit:
            problems.append(f"messages[{index}] holds {longest} characters")
    return problems


@pytest.mark.parametrize("fault", list(INPUT_FAULTS), ids=[f.value for f in INPUT_FAULTS])
def test_explore_finds_shrinks_and_saves_each_input_fault(
    fault: Fault,
    fake_llm: Callable[..., ServerThread],
    run_cli: Callable[..., CliRun],
) -> None:
    server = fake_llm(faults={fault.value}, ttft_ms=0, chunk_delay_ms=0)
    url = f"{server.url}/v1"
    explored = run_cli("explore", "--url", url, "--seed", "1", "--max-examples", "200")
    out, report = explored.out, explored.report
    assert explored.code == 1 and report is not None, out
    assert report["failures"], out
    triggered = INPUT_FAULTS[fault]
    for failure in report["failures"]:
        reproducer = Path(failure["reproducer"])
        body = json.loads(reproducer.read_text())["request"]["body"]  # exactly as sent
        assert triggered(body), f"{failure['key']}: the shrunk request is not of the fault's class"
        assert _small(fault, body) == [], failure["key"]
        assert run_cli("check", "--url", url, "--replay", str(reproducer)).code == 1
        assert run_cli("check", "--replay", str(reproducer)).code == 0

"""`check --variable`, `--system-prompt` and the transcriber switches, end to end against the fake LLM."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from harness.fake_llm import FakeLLMConfig, create_app
from harness.servers import ServerThread
from tests.harness.gate import Gate

pytestmark = pytest.mark.slow

FAST = ("--timeout-s", "2", "--deadline-s", "4", "--close-grace-s", "0.5", "--barge-in-pause-ms", "0")


def bodies(server: ServerThread) -> list[dict[str, Any]]:
    return [r.body for r in server.app.state.fake.recorded if isinstance(r.body, dict)]


def test_variables_reach_every_call_object_and_the_system_prompt(
    fake_llm: Callable[..., ServerThread], run_cli: Callable[..., Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    server = fake_llm()
    monkeypatch.setenv("VAPI_HARNESS_VARIABLE", "customerName=Ada\nplan=gold=ish\n")  # one per line
    prompt = 'Hello {{customerName}}, your plan is {{ plan | default: "basic" }}; {{ missing | default: "none" }}.'
    result = run_cli("check", "--url", f"{server.url}/v1", "--system-prompt", prompt, *FAST)
    assert result.code == 0, result.out
    sent = bodies(server)
    assert sent and all(b["messages"][0]["content"] == "Hello Ada, your plan is gold=ish; none." for b in sent)
    calls = [b["call"] for b in sent if "call" in b]
    assert len(calls) >= 10
    assert all(c["assistantOverrides"]["variableValues"] == {"customerName": "Ada", "plan": "gold=ish"} for c in calls)
    flag = run_cli("check", "--url", f"{server.url}/v1", "--variable", "plan=platinum", *FAST)
    assert flag.code == 0  # the flag replaces the environment's list
    assert bodies(server)[-1]["call"]["assistantOverrides"]["variableValues"] == {"plan": "platinum"}


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--variable", "customerName"], "--variable: 'customerName' is not NAME=VALUE"),
        (["--variable", "1st=x"], "--variable: '1st=x' is not NAME=VALUE"),
        (["--system-prompt", "Hi {{ name"], "--system-prompt is not a template Vapi could fill (system prompt: "),
        (["--system-prompt", "Hi {{ a | nofilter }}"], "unknown filter 'nofilter'"),
        (["--system-prompt", "x", "--suite", "conversations"], "--system-prompt shapes the default probes; --suite"),
        (["--word-level-confidence", "--replay", "x.jsonl"], "--word-level-confidence shapes the default probes"),
        (["--variable", "a=b", "--replay", "x.jsonl"], "--variable shapes the default probes; --replay sends"),
    ],
    ids=["no-equals", "bad-name", "unclosed", "unknown-filter", "prompt-with-suite", "extras-replay", "var-replay"],
)
def test_bad_variables_and_prompts_exit_2(args: list[str], message: str, run_cli: Callable[..., Any]) -> None:
    result = run_cli("check", "--url", "http://127.0.0.1:9/v1", *args)
    assert result.code == 2
    assert message in result.err and len(result.err.strip().splitlines()) == 1


def test_variables_go_over_a_scenarios_own(
    fake_llm: Callable[..., ServerThread], run_cli: Callable[..., Any], tmp_path: Path
) -> None:
    scenario = tmp_path / "hello.yaml"
    scenario.write_text(
        "name: hello\n"
        "variables: {customerName: Bob, plan: gold}\n"
        "assistant:\n"
        "  model:\n"
        "    messages: [{role: system, content: 'Hi {{customerName}} on {{plan}}'}]\n"
        "turns:\n"
        "  - user: Hello\n",
        encoding="utf-8",
    )
    server = fake_llm()
    result = run_cli("check", "--url", f"{server.url}/v1", "--suite", str(scenario), "--variable", "plan=basic")
    assert result.code == 0, result.out
    sent = bodies(server)[-1]
    assert sent["messages"][0]["content"] == "Hi Bob on basic"  # the command line wins for `plan`
    assert sent["call"]["assistantOverrides"]["variableValues"] == {"customerName": "Bob", "plan": "basic"}


def strict_server(serve: Callable[[Any], ServerThread]) -> str:
    """A custom LLM that refuses message fields OpenAI does not define (pydantic's `extra="forbid"`)."""
    gate = Gate(create_app(FakeLLMConfig(ttft_ms=2.0, chunk_delay_ms=2.0)), strict_messages=True)
    return f"{serve(gate).url}/v1"


def test_a_server_refusing_the_transcriber_extras_warns_naming_the_field(
    serve: Callable[[Any], ServerThread], run_cli: Callable[..., Any]
) -> None:
    url = strict_server(serve)
    assert run_cli("check", "--url", url, *FAST).code == 0  # without the switches nothing carries them
    result = run_cli("check", "--url", url, "--word-level-confidence", "--emotion-recognition", *FAST)
    assert result.code == 0, result.out  # a guessed shape only warns
    failures = result.check("status_is_success")["failures"]
    assert [(f["probe"], f["severity"]) for f in failures] == [("transcriber_extras", "warning")]
    assert failures[0]["title"] == "HTTP 400 for a user message with metadata.wordLevelConfidence, metadata.emotion"
    assert "low confidence" in failures[0]["detail"] and "extra fields not permitted: metadata" in failures[0]["detail"]
    assert "metadata.wordLevelConfidence" in result.out
    strict = run_cli("check", "--url", url, "--word-level-confidence", "--strict", *FAST)
    assert strict.code == 1
    assert strict.check("status_is_success")["failures"][0]["title"].endswith("with metadata.wordLevelConfidence")


def test_a_server_that_takes_the_extras_passes_with_them(
    fake_llm: Callable[..., ServerThread], run_cli: Callable[..., Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    server = fake_llm()
    monkeypatch.setenv("VAPI_HARNESS_EMOTION_RECOGNITION", "true")
    result = run_cli("check", "--url", f"{server.url}/v1", "--strict", *FAST)
    assert result.code == 0, result.out
    extras = [e for e in result.report["exchanges"] if e["probe"] == "transcriber_extras"]
    assert len(extras) == 1
    user = extras[0]["request"]["body"]["messages"][-1]
    assert user["metadata"] == {"emotion": {"emotion": "neutral", "confidence": 0.9}}

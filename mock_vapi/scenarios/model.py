"""A scenario: one Vapi call with a custom LLM, turn by turn, with what each turn must show."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

__all__ = [
    "BARGE_IN_PAUSE_MS",
    "MAX_DURATION_S",
    "SILENCE_TIMEOUT_S",
    "ContentExpectation",
    "Expectation",
    "Interrupt",
    "Scenario",
    "ToolCallExpectation",
    "Turn",
]

# How long after a barge-in's abort Vapi sends the next request: the caller says the rest of the utterance
# (Vapi tore the stream down after stopSpeakingPlan.voiceSeconds, 0.2 s, of it), then endpointing waits
# (startSpeakingPlan: 0.1 s after punctuation, 1.5 s without). About 0.7 s of speech plus 0.1 s: 800 ms.
BARGE_IN_PAUSE_MS = 800.0
# Vapi's defaults for how long a call may last and how long the caller may say nothing (docs/mock-vapi.md).
MAX_DURATION_S = 600.0
SILENCE_TIMEOUT_S = 30.0


@dataclass(frozen=True)
class ContentExpectation:
    """What the spoken reply must (not) say."""

    exact: str | None = None
    regex: str | None = None
    contains: tuple[str, ...] = ()
    not_contains: tuple[str, ...] = ()
    ignore_case: bool = False


@dataclass(frozen=True)
class ToolCallExpectation:
    """A tool call by name, with a subset of its arguments."""

    name: str
    arguments: dict[str, Any] | None = None


@dataclass(frozen=True)
class Expectation:
    """Everything one turn is judged on; unset parts are not judged."""

    content: ContentExpectation | None = None
    tool_call: ToolCallExpectation | None = None
    no_tool_call: bool = False
    ends_call: bool | None = None
    transfers: bool | None = None
    ttft_ms: float | None = None
    first_sentence_ms: float | None = None
    total_ms: float | None = None

    @classmethod
    def from_dict(cls, obj: dict[str, Any] | None) -> Expectation:
        """From the (schema-valid) `expect` object."""
        if not obj:
            return cls()
        content = obj.get("content")
        tool = obj.get("tool_call")
        latency = obj.get("latency") or {}
        return cls(
            content=None
            if content is None
            else ContentExpectation(
                exact=content.get("exact"),
                regex=content.get("regex"),
                contains=_strings(content.get("contains")),
                not_contains=_strings(content.get("not_contains")),
                ignore_case=bool(content.get("ignore_case", False)),
            ),
            tool_call=None if tool is None else ToolCallExpectation(tool["name"], tool.get("arguments")),
            no_tool_call=bool(obj.get("no_tool_call", False)),
            ends_call=obj.get("ends_call"),
            transfers=obj.get("transfers"),
            ttft_ms=latency.get("ttft_ms"),
            first_sentence_ms=latency.get("first_sentence_ms"),
            total_ms=latency.get("total_ms"),
        )


def _strings(value: str | list[str] | None) -> tuple[str, ...]:
    if value is None:
        return ()
    return (value,) if isinstance(value, str) else tuple(value)


@dataclass(frozen=True)
class Interrupt:
    """A barge-in: close the reply after `after_ms` from the request, or after `after_chars` of content."""

    after_ms: float | None = None
    after_chars: int | None = None
    user: str | None = None  # set: the caller kept talking and the turn is re-sent with this utterance
    pause_ms: float = BARGE_IN_PAUSE_MS  # from the abort to the next request: the caller speaking, endpointing


@dataclass(frozen=True)
class Turn:
    """One caller utterance and what the reply to it must show."""

    user: str
    interrupts: tuple[Interrupt, ...] = ()
    expect: Expectation = field(default_factory=Expectation)
    skip_checks: frozenset[str] = frozenset()
    line: int | None = None
    silence_s: float = 0.0  # after the reply, the caller says nothing this long (on the call's clock)


@dataclass(frozen=True)
class Scenario:
    """One call: the assistant, the call context, simulator switches and the turns."""

    name: str
    source: str
    turns: tuple[Turn, ...]
    description: str = ""
    first_message: str | None = None
    first_message_mode: str = "assistant-speaks-first"
    expect_first_message: Expectation = field(default_factory=Expectation)
    metadata: dict[str, Any] = field(default_factory=dict)
    model_output_in_messages: bool = False
    model: dict[str, Any] = field(default_factory=dict)  # Vapi's model object, without url unless the file sets it
    call: dict[str, Any] = field(default_factory=dict)
    tool_results: dict[str, Any] = field(default_factory=dict)
    tool_call_content: str = "null"  # "null" or "empty": the content of an assistant message with tool_calls
    stream: bool = True
    concurrency: int = 1
    variables: dict[str, Any] = field(default_factory=dict)  # the call's assistantOverrides.variableValues
    end_call_phrases: tuple[str, ...] = ()
    max_duration_s: float = MAX_DURATION_S
    silence_timeout_s: float = SILENCE_TIMEOUT_S
    server: dict[str, Any] | None = None  # the assistant's server URL: status and conversation updates
    server_messages: tuple[str, ...] | None = None  # which server messages it takes (None: Vapi's default)

    @classmethod
    def from_dict(cls, obj: dict[str, Any], source: str, lines: dict[int, int] | None = None) -> Scenario:
        """From a schema-valid document; `lines` maps a turn's index to its line in the file."""
        assistant = obj.get("assistant") or {}
        simulator = obj.get("simulator") or {}
        turns = []
        for index, turn in enumerate(obj["turns"]):
            raw = turn.get("interrupt") or []
            interrupts = [raw] if isinstance(raw, dict) else raw
            turns.append(
                Turn(
                    user=turn["user"],
                    interrupts=tuple(
                        Interrupt(
                            i.get("afterMs"), i.get("afterChars"), i.get("user"), i.get("pauseMs", BARGE_IN_PAUSE_MS)
                        )
                        for i in interrupts
                    ),
                    expect=Expectation.from_dict(turn.get("expect")),
                    skip_checks=frozenset(turn.get("skipChecks") or ()),
                    line=(lines or {}).get(index),
                    silence_s=float(turn.get("silenceSeconds", 0)),
                )
            )
        return cls(
            name=obj["name"],
            source=source,
            turns=tuple(turns),
            description=obj.get("description", ""),
            first_message=assistant.get("firstMessage"),
            first_message_mode=assistant.get("firstMessageMode", "assistant-speaks-first"),
            expect_first_message=Expectation.from_dict(assistant.get("expectFirstMessage")),
            metadata=dict(assistant.get("metadata") or {}),
            model_output_in_messages=bool(assistant.get("modelOutputInMessagesEnabled", False)),
            model=dict(assistant.get("model") or {}),
            call=dict(obj.get("call") or {}),
            tool_results=dict(obj.get("toolResults") or {}),
            tool_call_content=simulator.get("toolCallContent", "null"),
            stream=bool(simulator.get("stream", True)),
            concurrency=int(obj.get("concurrency", 1)),
            variables=dict(obj.get("variables") or {}),
            end_call_phrases=tuple(assistant.get("endCallPhrases") or ()),
            max_duration_s=float(assistant.get("maxDurationSeconds", MAX_DURATION_S)),
            silence_timeout_s=float(assistant.get("silenceTimeoutSeconds", SILENCE_TIMEOUT_S)),
            server=dict(assistant["server"]) if isinstance(assistant.get("server"), dict) else None,
            server_messages=None if assistant.get("serverMessages") is None else tuple(assistant["serverMessages"]),
        )

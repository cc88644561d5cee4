"""Hypothesis strategies for every request Vapi could send a custom LLM's `/chat/completions`.

`conversations(base_url)` draws one whole turn: the model config, the history Vapi re-sends, the call it
belongs to and whether it streams. The parts are public strategies of their own (text, metadata, tool schemas,
tool histories, ...) so tests and the load generator can reuse them.

Everything drawn keeps Vapi's rules (`harness.explore.rules.rule_problems` says which): the system prompt
first, each assistant `tool_calls` message answered by one `tool` message per call, no customer or phone number
on a web call, the extras `metadataSendMode` sends. Every choice is ordered so that Hypothesis shrinks toward
the plainest request: few and short messages, ASCII text, no tools, `{}` metadata, Vapi's default temperature
and maxTokens, a streamed turn. Rare classes are drawn often enough to be found in a few hundred examples
(`rarely`, `usually`), and the expensive parts are built once (a strategy made for every draw is validated for
every draw).
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from functools import cache
from typing import Any

from hypothesis import strategies as st

from harness.protocol import CHAT_PARAMS
from mock_vapi import CallContext, CustomLLMModel, MetadataSendMode, VapiRequest, build_request
from mock_vapi.tools import TOOL_TYPES
from mock_vapi.transcriber import user_message

__all__ = [
    "CALL_KINDS",
    "FIRST_MESSAGE_MODES",
    "Conversation",
    "call_contexts",
    "conversations",
    "function_tools",
    "histories",
    "json_values",
    "long_text",
    "long_tool_results",
    "metadata",
    "models",
    "parameter_schemas",
    "rarely",
    "spoken_text",
    "text",
    "tool_results",
    "tools",
    "usually",
    "vapi_tools",
]

CALL_KINDS = ("inboundPhoneCall", "outboundPhoneCall", "webCall")
# `firstMessageMode`, the plainest history first: [system, user] before [system, assistant, user] and [system].
FIRST_MESSAGE_MODES = (
    "assistant-waits-for-user",
    "assistant-speaks-first",
    "assistant-speaks-first-with-model-generated-message",
)
_MAX_TEXT = 3000  # characters of one long utterance or tool result text
_SAFE_INT = 2**53 - 1  # JSON numbers Vapi (JavaScript) keeps exactly
# Keys of the body Vapi itself fills: destructured metadata never lands on one of them.
_RESERVED_KEYS = CHAT_PARAMS | {"call", "phoneNumber", "customer"}

# Unicode Vapi can send: no surrogates (not UTF-8), no control characters, nothing unassigned or private.
_UNICODE = st.characters(exclude_categories=["Cs", "Cc", "Cn", "Co"])
_ASCII = st.characters(min_codepoint=0x20, max_codepoint=0x7E)
# The characters a server most often mishandles, one alphabet (drawn as fast as ASCII): accents, CJK,
# right-to-left scripts, combining marks, zero-width characters and emoji beyond the BMP.
_TRICKY = st.characters(
    codec="utf-8",
    categories=[],
    include_characters=(
        "abc XYZ 019.,?!'"
        "\u00e9\u00e8\u00f1\u00fc\u00df\u00e7\u00c5\u0142\u0151"
        "\u4f60\u597d\u660e\u5929\u3053\u3093\u306b\u3061\u306f\ud55c\uad6d"
        "\u05e9\u05dc\u05d5\u05dd\u0645\u0631\u062d\u0628\u0627\u200f\u200e"
        "\u0301\u0308\u0327\u0351\u20dd"
        "\u200b\u200c\u200d\u2060\ufeff"
        "\u2764\u2603\U0001f600\U0001f44d\U0001f363\U0001f1fa\U0001f1f8\U0001f9d1\U0001f3fd\U0001d11e"
    ),
)


@cache
def text(*, min_size: int = 0, max_size: int = 40) -> st.SearchStrategy[str]:
    """Text from all of Unicode Vapi can send, often the characters servers mishandle; shrinks toward ASCII."""
    return st.one_of(
        st.text(_ASCII, min_size=min_size, max_size=max_size),
        st.text(_TRICKY, min_size=min_size, max_size=max_size),
        st.text(_UNICODE, min_size=min_size, max_size=max_size),
    )


def _spoken(raw: str) -> str:
    """What a transcript holds: words separated by single spaces, never empty."""
    return " ".join(raw.split()) or "a"


@st.composite
def rarely(draw: st.DrawFn, common: st.SearchStrategy[Any], rare: st.SearchStrategy[Any], one_in: int) -> Any:
    """`rare` about once in `one_in` draws, else `common`; shrinks toward `common`."""
    return draw(rare if draw(st.integers(0, one_in - 1)) == one_in - 1 else common)


@st.composite
def usually(draw: st.DrawFn, plain: st.SearchStrategy[Any], rich: st.SearchStrategy[Any], one_in: int) -> Any:
    """`plain` about once in `one_in` draws, else `rich`; shrinks toward `plain`."""
    return draw(plain if draw(st.integers(0, one_in - 1)) == 0 else rich)


def _stretched(drawn: tuple[str, int]) -> str:
    piece, size = drawn
    unit = piece + " "
    return (unit * (size // len(unit) + 1))[:size]


@cache
def long_text(*, min_size: int = 200, max_size: int = _MAX_TEXT) -> st.SearchStrategy[str]:
    """Text of `min_size` to `max_size` characters: a drawn phrase said again and again (cheap to draw)."""
    return st.tuples(text(min_size=1, max_size=60), st.integers(min_size, max_size)).map(_stretched)


@cache
def spoken_text() -> st.SearchStrategy[str]:
    """An utterance as the transcriber (or Vapi's spoken history) writes it: one word to a few thousand
    characters, single-spaced, never empty."""
    return rarely(text(min_size=1, max_size=40), long_text(), 6).map(_spoken)


@cache
def json_values(*, max_leaves: int = 12) -> st.SearchStrategy[Any]:
    """Any JSON value: nested objects and lists, nulls, non-ASCII keys; numbers JavaScript keeps exactly."""
    scalars = st.one_of(
        st.none(),
        st.booleans(),
        st.integers(-_SAFE_INT, _SAFE_INT),
        st.floats(allow_nan=False, allow_infinity=False, width=64),
        text(max_size=20),
    )
    return st.recursive(
        scalars,
        lambda inner: st.one_of(
            st.lists(inner, max_size=4),
            st.dictionaries(text(min_size=1, max_size=12), inner, max_size=4),
        ),
        max_leaves=max_leaves,
    )


@cache
def metadata() -> st.SearchStrategy[dict[str, Any]]:
    """`assistant.metadata`: any JSON object of bounded size; shrinks toward `{}`."""
    keys = text(min_size=1, max_size=16).filter(lambda k: k not in _RESERVED_KEYS)
    return st.dictionaries(keys, json_values(max_leaves=6), max_size=3)


_NAME = st.text("abcdefghijklmnopqrstuvwxyz_0123456789", min_size=1, max_size=24)
_BUILTIN_NAMES = frozenset(t.name for t in TOOL_TYPES.values())
_CALL_ENDING = frozenset({"endCall", "transferCall"})


@cache
def parameter_schemas(depth: int = 2) -> st.SearchStrategy[dict[str, Any]]:
    """A function's JSON-Schema `parameters`: an object of typed properties (nested objects, arrays, enums),
    some required."""
    leaf = st.one_of(
        st.just({"type": "string"}),
        st.sampled_from([{"type": "integer"}, {"type": "number"}, {"type": "boolean"}]),
        st.lists(text(min_size=1, max_size=12), min_size=1, max_size=4, unique=True).map(
            lambda values: {"type": "string", "enum": values}
        ),
        st.tuples(st.just({"type": "string"}), text(min_size=1, max_size=40)).map(
            lambda pair: {**pair[0], "description": pair[1]}
        ),
    )
    prop: st.SearchStrategy[dict[str, Any]] = leaf
    if depth > 0:
        prop = st.one_of(
            leaf,
            st.deferred(lambda: parameter_schemas(depth - 1)),
            st.deferred(lambda: leaf.map(lambda items: {"type": "array", "items": items})),
        )
    return st.tuples(st.dictionaries(_NAME, prop, max_size=3), st.integers(0, 7)).map(_object_schema)


def _object_schema(drawn: tuple[dict[str, Any], int]) -> dict[str, Any]:
    """An object schema of `properties`; bit i of `required` makes the i-th property required."""
    properties, required = drawn
    schema: dict[str, Any] = {"type": "object", "properties": properties}
    names = [name for i, name in enumerate(properties) if required >> i & 1]
    if names:
        schema["required"] = names
    return schema


@cache
def function_tools() -> st.SearchStrategy[dict[str, Any]]:
    """A Vapi `function` tool: a name, maybe a description, its parameters."""
    return st.builds(
        lambda name, description, parameters: {
            "type": "function",
            "function": {"name": name, **({"description": description} if description else {}),
                         "parameters": parameters},
        },
        _NAME.filter(lambda n: n not in _BUILTIN_NAMES),
        st.one_of(st.just(""), text(min_size=1, max_size=120)),
        parameter_schemas(),
    )  # fmt: skip


_PHONE = st.integers(0, 9_999_999).map(lambda n: f"+1555{n:07d}")


@cache
def vapi_tools() -> st.SearchStrategy[dict[str, Any]]:
    """One of Vapi's built-in tools (sent as the function `mock_vapi.tools` maps it to)."""
    transfer = st.lists(_PHONE, min_size=1, max_size=3, unique=True).map(
        lambda numbers: {"type": "transferCall", "destinations": [{"type": "number", "number": n} for n in numbers]}
    )
    return st.one_of(
        st.sampled_from([{"type": kind} for kind in ("endCall", "dtmf", "sms", "query", "voicemail")]),
        transfer,
    )


def _tool_name(tool: Mapping[str, Any]) -> str:
    function = tool.get("function")
    if isinstance(function, Mapping):
        return str(function["name"])
    return TOOL_TYPES[str(tool["type"])].name


@cache
def tools(min_size: int = 0) -> st.SearchStrategy[list[dict[str, Any]]]:
    """`model.tools`: function tools and built-in tools with distinct names (none most simply)."""
    return st.lists(st.one_of(function_tools(), vapi_tools()), min_size=min_size, max_size=3, unique_by=_tool_name)


# A tool call's arguments, the JSON string the model produced (Vapi passes it on as it came).
_ARGUMENTS = rarely(
    st.just("{}"),
    st.dictionaries(_NAME, json_values(max_leaves=3), min_size=1, max_size=2).map(
        lambda args: json.dumps(args, ensure_ascii=False)
    ),
    2,
)


@cache
def tool_results() -> st.SearchStrategy[str]:
    """A tool message's content: a few bytes of text to several KB of JSON."""
    return st.one_of(
        st.just("Done."),
        st.just(""),  # an async tool: Vapi does not wait for its result
        text(min_size=1, max_size=60),
        json_values().map(lambda v: json.dumps(v, ensure_ascii=False)),
        st.tuples(json_values(max_leaves=4), st.integers(200, 1500)).map(_json_of_size),
        long_tool_results(),
    )


@cache
def long_tool_results() -> st.SearchStrategy[str]:
    """A tool message's content of 2.5 to 8 KB of JSON (a search result, a table of rows)."""
    return st.tuples(json_values(max_leaves=4), st.integers(2500, 8000)).map(_json_of_size)


def _json_of_size(drawn: tuple[Any, int]) -> str:
    """A JSON list of `item` of about `size` characters (a search result, a table of rows)."""
    item, size = drawn
    one = json.dumps(item, ensure_ascii=False)
    return json.dumps({"items": [item] * (size // (len(one) + 1) + 1)}, ensure_ascii=False)


# The filler turns of a long history, taken in turn (a long history of drawn text would be slow to generate).
_PHRASES = (
    "yes", "Okay, thanks.", "Can you repeat that?", "¿Dónde está la clínica?", "Ich möchte einen Termin.",
    "明天几点开门\uff1f", "هل أنتم مفتوحون غدا؟", "שלום, מה השעה?", "café crème", "That works 👍",
    "Z\u0351\u0346algo te\u0300xt", "zero\u200bwidth", "Let me check on that for you.", "One moment please.",
)  # fmt: skip


@dataclass(frozen=True)
class _Round:
    """One tool round: what the assistant said with its calls, and each call (name, JSON arguments, result)."""

    content: str | None
    calls: tuple[tuple[str, str, str], ...]


@cache
def _tool_rounds(names: tuple[str, ...]) -> st.SearchStrategy[list[_Round]]:
    """One round (sometimes two: the model calls again after the results) of 1 to 3 parallel calls to the tools
    `names`."""
    if not names:
        return st.just([])
    call = st.tuples(st.sampled_from(names), _ARGUMENTS, rarely(tool_results(), long_tool_results(), 3))
    calls = rarely(st.tuples(call), st.lists(call, min_size=2, max_size=3).map(tuple), 2)  # parallel, half the time
    one = st.builds(_Round, st.one_of(st.sampled_from([None, ""]), spoken_text()), calls)
    return rarely(st.tuples(one).map(list), st.tuples(one, one).map(list), 4)


class _History:
    """A history being drawn: messages in Vapi's order, tool-call ids numbered as they come."""

    def __init__(self, system_prompt: str, *, word_confidence: bool, emotion: bool) -> None:
        self.messages: list[dict[str, Any]] = [{"role": "system", "content": system_prompt}]
        self.calls = 0
        self.extras = {"word_confidence": word_confidence, "emotion": emotion}

    def say(self, content: str) -> None:
        """What the assistant said (nothing at all leaves no message: the caller cut it off at once)."""
        if content:
            self.messages.append({"role": "assistant", "content": content})

    def hear(self, utterance: str) -> None:
        """What the caller said, with the transcriber's extras the model enables."""
        self.messages.append(user_message(utterance, **self.extras))

    def tool_round(self, done: _Round) -> None:
        ids = [f"call_{self.calls + i}" for i in range(len(done.calls))]
        self.calls += len(ids)
        self.messages.append({
            "role": "assistant",
            "content": done.content,
            "tool_calls": [
                {"id": cid, "type": "function", "function": {"name": name, "arguments": arguments}}
                for cid, (name, arguments, _) in zip(ids, done.calls, strict=True)
            ],
        })  # fmt: skip
        self.messages += [
            {"role": "tool", "tool_call_id": cid, "content": result}
            for cid, (_, _, result) in zip(ids, done.calls, strict=True)
        ]


def histories(
    first_message_mode: str,
    tool_names: Sequence[str] = (),
    *,
    word_confidence: bool = False,
    emotion: bool = False,
) -> st.SearchStrategy[tuple[dict[str, Any], ...]]:
    """The whole history Vapi re-sends for one request, system prompt first.

    Past turns are complete (the user, tool rounds, the assistant's spoken answer, which a barge-in may have
    cut to nothing); the last turn ends at what the model must answer now (the user, or the tool results).
    About one history in four is long (more than 40 messages), its earlier turns from a pool of phrases. User
    messages carry the transcriber's extras the flags switch on; tool calls call the tools `tool_names`.
    """
    return _histories(first_message_mode, tuple(tool_names), word_confidence, emotion)


# Built once: a strategy made anew for every draw is validated anew, which would cost more than the draw.
_LONG_HISTORY = rarely(st.just(False), st.just(True), 4)
_PHRASE_START = st.integers(0, len(_PHRASES) - 1)
_LONG_TURNS = st.integers(21, 48)  # filler turns of a long history: 42 messages and more
_MAYBE_CUT_OFF = rarely(spoken_text(), st.just(""), 6)
_NO_ROUNDS: st.SearchStrategy[list[_Round]] = st.just([])


@cache
def _histories(
    mode: str, names: tuple[str, ...], word_confidence: bool, emotion: bool
) -> st.SearchStrategy[tuple[dict[str, Any], ...]]:
    # A turn: what the caller said, the tool rounds it led to, what the assistant then said. The turns are a
    # list, so the shrinker can drop the turns before the one that matters, which then becomes the last.
    turn = st.tuples(spoken_text(), rarely(_NO_ROUNDS, _tool_rounds(names), 2), _MAYBE_CUT_OFF)
    turns = st.lists(turn, min_size=1, max_size=3)

    @st.composite
    def draw_history(draw: st.DrawFn) -> tuple[dict[str, Any], ...]:
        history = _History(draw(spoken_text()), word_confidence=word_confidence, emotion=emotion)
        if mode != FIRST_MESSAGE_MODES[0]:
            if mode == FIRST_MESSAGE_MODES[2] and draw(st.booleans()):
                return tuple(history.messages)  # the call has just started: Vapi asks for the first message
            history.say(draw(spoken_text()))
        if draw(_LONG_HISTORY):
            start = draw(_PHRASE_START)
            for i in range(draw(_LONG_TURNS)):
                history.hear(_PHRASES[(start + 2 * i) % len(_PHRASES)])
                history.say(_PHRASES[(start + 2 * i + 1) % len(_PHRASES)])
        drawn = draw(turns)
        for index, (utterance, rounds, answer) in enumerate(drawn):
            history.hear(utterance)
            for done in rounds:
                history.tool_round(done)
            if index < len(drawn) - 1:  # the last turn is the one the model answers now
                history.say(answer)
        return tuple(history.messages)

    return draw_history()


_CALL_IDS = st.uuids().map(str)
_VARIABLES = rarely(st.just({}), st.dictionaries(_NAME, text(max_size=20), min_size=1, max_size=3), 3)


@cache
def call_contexts(kind: str) -> st.SearchStrategy[CallContext]:
    """The call a request belongs to, with its metadata: an inbound or outbound phone call (with a customer and
    a phone number) or a web call (neither)."""

    @st.composite
    def draw_context(draw: st.DrawFn) -> CallContext:
        meta, call_id, variables = draw(metadata()), draw(_CALL_IDS), draw(_VARIABLES)
        if kind == "webCall":
            return CallContext.web_call(metadata=meta, call_id=call_id, variable_values=variables)
        context = CallContext.inbound_phone_call(
            customer_number=draw(_PHONE), metadata=meta, call_id=call_id, variable_values=variables
        )
        if kind == "outboundPhoneCall" and context.call is not None:
            context = dataclasses.replace(context, call={**context.call, "type": "outboundPhoneCall"})
        return context

    return draw_context()


@cache
def models(base_url: str) -> st.SearchStrategy[CustomLLMModel]:
    """A `custom-llm` model config: Vapi's ranges for temperature (0 to 2) and maxTokens (50 to 10000), its
    three metadataSendModes, and tools."""
    return st.builds(
        CustomLLMModel,
        url=st.just(base_url),
        model=st.sampled_from(["gpt-4o", "acme-voice-1", "llama-3.1-8b-instruct"]),
        temperature=st.one_of(st.just(0.5), st.floats(0, 2, allow_nan=False)),
        max_tokens=st.one_of(st.just(250), st.integers(50, 10000)),
        tools=usually(st.just(()), tools(min_size=1).map(tuple), 4),
        metadata_send_mode=st.sampled_from(list(MetadataSendMode)),
    )


@dataclass(frozen=True)
class Conversation:
    """One generated turn as Vapi would send it, before it is built into bytes."""

    model: CustomLLMModel
    messages: tuple[Mapping[str, Any], ...]
    context: CallContext | None
    stream: bool
    kind: str
    first_message_mode: str

    def request(self, api_key: str | None = None) -> VapiRequest:
        """The HTTP request, exactly as `mock_vapi.build_request` makes it."""
        return build_request(self.model, self.messages, context=self.context, api_key=api_key, stream=self.stream)

    def summary(self) -> dict[str, Any]:
        """Short facts for reports."""
        users = [m for m in self.messages if m.get("role") == "user"]
        last_user = str(users[-1].get("content") or "") if users else None
        return {
            "kind": self.kind,
            "metadataSendMode": self.model.metadata_send_mode.value,
            "firstMessageMode": self.first_message_mode,
            "stream": self.stream,
            "messages": len(self.messages),
            "tools": len(self.model.tools),
            "lastUserMessage": last_user[:120] if last_user is not None else None,
            "metadataKeys": sorted(self.context.metadata) if self.context is not None else [],
        }


_KINDS = st.sampled_from(CALL_KINDS)
_FIRST_MESSAGE_MODES = st.sampled_from(FIRST_MESSAGE_MODES)
_TRANSCRIBER_EXTRAS = rarely(st.just((False, False)), st.tuples(st.booleans(), st.booleans()), 4)
_STREAM = st.sampled_from([True, False])  # Vapi streams on calls: the plainer request


@cache
def conversations(base_url: str) -> st.SearchStrategy[Conversation]:
    """Every turn Vapi could send to the custom LLM at `base_url` (its `model.url`)."""

    @st.composite
    def draw_conversation(draw: st.DrawFn) -> Conversation:
        model = draw(models(base_url))
        kind = draw(_KINDS)
        mode = draw(_FIRST_MESSAGE_MODES)
        # endCall and transferCall end the call: no request follows them, so no history holds them.
        names = [n for n in map(_tool_name, model.tools) if n not in _CALL_ENDING]
        word_confidence, emotion = draw(_TRANSCRIBER_EXTRAS)
        messages = draw(histories(mode, names, word_confidence=word_confidence, emotion=emotion))
        context = None
        if model.metadata_send_mode is not MetadataSendMode.OFF:
            context = draw(call_contexts(kind))
        stream = draw(_STREAM)
        return Conversation(model, messages, context, stream, kind, mode)

    return draw_conversation()

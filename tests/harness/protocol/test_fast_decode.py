"""The reader's typed decode of each event gives what the strict full-tree path gives, event by event and verdict
by verdict, over a corpus of odd events: only its speed may differ."""

from __future__ import annotations

import json
from typing import Any

import pytest

from harness.checks import CheckContext, Expect, Thresholds, run_checks
from harness.protocol import SSEDecoder, SSEEvent
from mock_vapi import CustomLLMModel, MetadataSendMode, build_request
from mock_vapi.exchange import Exchange, ParsedEvent, Recorder

MODEL = CustomLLMModel(url="http://127.0.0.1:9/v1", model="m", metadata_send_mode=MetadataSendMode.OFF)
HEAD = '{"id":"c1","object":"chat.completion.chunk","created":1,"model":"m",'


def choice(delta: str, finish: str = "null") -> str:
    return HEAD + '"choices":[{"index":0,"delta":' + delta + ',"finish_reason":' + finish + "}]}"


def nested(depth: int) -> str:
    return HEAD + '"x":' + "[" * depth + "]" * depth + ',"choices":[{"delta":{"content":"deep"}}]}'


# Each entry is the data of one event, as bytes after `data: ` (no line ends inside).
CORPUS: dict[str, bytes] = {
    "plain content": choice('{"content":"We open at nine"}').encode(),
    "role chunk": choice('{"role":"assistant","content":""}').encode(),
    "escapes": choice(r'{"content":"\"q\" \\ \/ \b\f\n\r\t end"}').encode(),
    "raw unicode": choice('{"content":"héllo 世界 🎉"}').encode(),
    "unicode escapes": choice(r'{"content":"\u00e9 \ud83c\udf89 \u0000"}').encode(),
    "lone high surrogate": choice(r'{"content":"a\ud800b"}').encode(),
    "lone low surrogate": choice(r'{"content":"\udc00"}').encode(),
    "reversed surrogate pair": choice(r'{"content":"\udc00\ud800"}').encode(),
    "surrogate in a skipped field": (HEAD + r'"note":"\ud800","choices":[]}').encode(),
    "NaN in content": choice('{"content":NaN}').encode(),
    "NaN in a skipped field": (HEAD + '"usage":{"x":NaN},"choices":[]}').encode(),
    "Infinity": choice('{"content":"x"}', "Infinity").encode(),
    "-Infinity": (HEAD + '"choices":[],"score":-Infinity}').encode(),
    "float past a double": (HEAD + '"big":1e400,"choices":[{"delta":{"content":"x"}}]}').encode(),
    "float below a double": (HEAD + '"small":1.5e-400,"choices":[{"delta":{"content":"x"}}]}').encode(),
    "finish_reason past a double": choice('{"content":"x"}', "1e999").encode(),
    "finish_reason zero float": choice('{"content":"x"}', "0.0").encode(),
    "big integers": (HEAD + '"n":123456789012345678901234567890,"choices":[{"delta":{"content":"x"}}]}').encode(),
    "big tool-call index": choice(
        '{"tool_calls":[{"index":18446744073709551616,"function":{"arguments":"{"}}]}'
    ).encode(),
    "float arguments": choice('{"tool_calls":[{"index":0,"x":0.30000000000000004,"y":-0.0,"z":1E2}]}').encode(),
    "duplicate choices, list then null": (HEAD + '"choices":[{"delta":{"content":"x"}}],"choices":null}').encode(),
    "duplicate choices, null then list": (HEAD + '"choices":null,"choices":[{"delta":{"content":"y"}}]}').encode(),
    "duplicate choices, text then list": (HEAD + '"choices":"no","choices":[{"delta":{"content":"y"}}]}').encode(),
    "duplicate content": choice('{"content":"first","content":"second"}').encode(),
    "duplicate content, text then number": choice('{"content":"first","content":2}').encode(),
    "duplicate delta": (HEAD + '"choices":[{"delta":{"content":"a"},"delta":null}]}').encode(),
    "duplicate error": (HEAD + '"error":{"message":"boom"},"error":null,"choices":[]}').encode(),
    "escaped key": (HEAD + r'"choi\u0063es":[{"delta":{"cont\u0065nt":"escaped key"}}]}').encode(),
    "key of another case": (HEAD + '"Choices":[{"delta":{"content":"x"}}]}').encode(),
    "nested error object": b'{"error":{"message":"upstream","error":{"code":500,"inner":{"type":"x"}}}}',
    "error empty object": b'{"error":{}}',
    "error empty list": b'{"error":[]}',
    "error empty string": b'{"error":""}',
    "error zero": b'{"error":0}',
    "error false": b'{"error":false}',
    "error text with choices": (HEAD + '"error":"rate limited","choices":[{"delta":{"content":"x"}}]}').encode(),
    "choices object": (HEAD + '"choices":{"0":{"delta":{"content":"x"}}}}').encode(),
    "choices text": (HEAD + '"choices":"x"}').encode(),
    "choices number": (HEAD + '"choices":1}').encode(),
    "choices null": (HEAD + '"choices":null}').encode(),
    "choices empty": (HEAD + '"choices":[]}').encode(),
    "choices missing": HEAD.rstrip(",").encode() + b"}",
    "choice not an object": (HEAD + '"choices":[1,{"delta":{"content":"x"}}]}').encode(),
    "second choice not an object": (HEAD + '"choices":[{"delta":{"content":"x"}},"two"]}').encode(),
    "choice null": (HEAD + '"choices":[null]}').encode(),
    "delta null": choice("null").encode(),
    "delta list": choice('[{"content":"x"}]').encode(),
    "delta text": choice('"hello"').encode(),
    "delta missing": (HEAD + '"choices":[{"index":0,"finish_reason":null}]}').encode(),
    "second delta a list": (HEAD + '"choices":[{"delta":{"content":"a"}},{"delta":[1]}]}').encode(),
    "content null": choice('{"content":null}').encode(),
    "content number": choice('{"content":42}').encode(),
    "content list": choice('{"content":["a","b"]}').encode(),
    "content object": choice('{"content":{"text":"a"}}').encode(),
    "content whitespace": choice('{"content":"  \\n "}').encode(),
    "tool_calls empty": choice('{"tool_calls":[]}').encode(),
    "tool_calls null": choice('{"content":"x","tool_calls":null}').encode(),
    "tool_calls object": choice('{"tool_calls":{"index":0}}').encode(),
    "tool_calls text": choice('{"tool_calls":"call"}').encode(),
    "tool_calls of numbers": choice('{"tool_calls":[1,2]}').encode(),
    "tool-call fragment without index": choice('{"tool_calls":[{"id":"call_1","function":{"name":"f"}}]}').encode(),
    "tool-call index as text": choice('{"tool_calls":[{"index":"0","function":{"arguments":"{}"}}]}').encode(),
    "tool-call head": choice(
        '{"tool_calls":[{"index":0,"id":"call_1","type":"function","function":{"name":"get_weather","arguments":""}}]}'
    ).encode(),
    "tool-call arguments object": choice('{"tool_calls":[{"index":0,"function":{"arguments":{"a":1}}}]}').encode(),
    "content and tool calls": choice('{"content":"one moment","tool_calls":[{"index":0,"id":"c"}]}').encode(),
    "finish stop": choice("{}", '"stop"').encode(),
    "finish empty text": choice("{}", '""').encode(),
    "finish zero": choice("{}", "0").encode(),
    "finish empty object": choice("{}", "{}").encode(),
    "finish empty list": choice("{}", "[]").encode(),
    "finish true": choice("{}", "true").encode(),
    "finish in second choice": (HEAD + '"choices":[{"delta":{}},{"delta":{},"finish_reason":"length"}]}').encode(),
    "top-level list": b'[{"choices":[]}]',
    "top-level text": b'"hello"',
    "top-level number": b"42",
    "top-level null": b"null",
    "top-level true": b"true",
    "leading and trailing whitespace": b' \t{"choices":[{"delta":{"content":"ws"}}]} \t ',
    "trailing form feed": b'{"choices":[]}\x0c',
    "trailing no-break space": '{"choices":[]}\u00a0'.encode(),
    "leading BOM": '\ufeff{"choices":[]}'.encode(),
    "truncated": b'{"choices":[{"delta":{"content":"we',
    "trailing comma": b'{"choices":[],}',
    "single quotes": b"{'choices':[]}",
    "trailing garbage": b'{"choices":[]} x',
    "two objects": b'{"choices":[]}{"choices":[]}',
    "comment": b'{"choices":[]} // done',
    "raw control character": choice('{"content":"a\x01b"}').encode(),
    "raw tab in a string": choice('{"content":"a\tb"}').encode(),
    "invalid UTF-8": choice('{"content":"caf').encode() + b"\xc3\x28" + b'"}',
    "not JSON at all": b"hello world",
    "empty data": b"",
    "done": b"[DONE]",
    "done with a tail": b"[DONE] and more",
    "nested 300 deep": nested(300).encode(),
    "nested 700 deep": nested(700).encode(),
    "large content": choice(json.dumps({"content": "la " * 2000})).encode(),
    "large tool call": choice(
        json.dumps({"tool_calls": [{"index": 0, "function": {"arguments": "x" * 5000}}]})
    ).encode(),
}


def fields(event: ParsedEvent) -> tuple[Any, ...]:
    """Everything the checks read of an event."""
    payload = event.payload
    return (
        event.sse, repr(payload) if payload is not None else None, event.content, list(event.tool_calls),
        event.json_error, event.finishes, event.has_error, event.has_choices, event.spoken, event.has_delta,
    )  # fmt: skip


def sse_events(data: bytes) -> list[SSEEvent]:
    decoder = SSEDecoder()
    return decoder.feed(b"data: " + data + b"\n\n", 1.0) + decoder.close(2.0)


@pytest.mark.parametrize("name", list(CORPUS))
def test_the_typed_decode_reads_each_event_as_the_strict_path_does(name: str) -> None:
    (sse,) = sse_events(CORPUS[name])
    assert fields(ParsedEvent.parse(sse)) == fields(ParsedEvent.parse_strict(sse))


def test_an_event_whose_text_holds_a_lone_surrogate_is_read_as_the_strict_path_does() -> None:
    """Text decoded from bytes never holds one, but an event made in code can: msgspec cannot encode it."""
    sse = SSEEvent(0, 1.0, '{"choices":[{"delta":{"content":"a\ud800b"}}]}')
    event = ParsedEvent.parse(sse)
    assert event.content == "a\ud800b"
    assert fields(event) == fields(ParsedEvent.parse_strict(sse))


def test_the_corpus_has_events_both_paths_take() -> None:
    """The corpus covers both sides: events the typed decode reads itself and events it leaves to the strict path
    (told apart by the typed decoder's answer, not by our code)."""
    import msgspec

    from mock_vapi.exchange import _CHUNK_DECODER

    typed, strict = [], []
    for name, data in CORPUS.items():
        try:
            _CHUNK_DECODER.decode(data)
        except (msgspec.DecodeError, ValueError):
            strict.append(name)
        else:
            typed.append(name)
    assert len(typed) >= 30 and len(strict) >= 30, (typed, strict)
    assert "duplicate choices, list then null" in typed and "NaN in content" in strict


def recorded(frames: list[bytes], *, strict: bool) -> Exchange:
    """The exchange the recorder makes of `frames`, each one read, 10 ms apart."""
    request = build_request(MODEL, [{"role": "user", "content": "hi"}])
    exchange = Exchange(request, t_start=0.0)
    exchange.status, exchange.headers, exchange.t_headers = 200, {"content-type": "text/event-stream"}, 0.001
    recorder = Recorder(exchange, parse=ParsedEvent.parse_strict if strict else ParsedEvent.parse)
    t = 0.0
    for data in frames:
        t += 0.01
        recorder.feed(data, t)
    recorder.end_of_body(t + 0.001)
    return recorder.finish(t + 0.001)


def verdicts(exchange: Exchange) -> list[tuple[str, str, str, str]]:
    found = run_checks(CheckContext("probe", Expect.TURN, Thresholds()), exchange)
    return [(f.check, str(f.status), f.title, f.detail) for f in found]


def frame(data: bytes) -> bytes:
    return b"data: " + data + b"\n\n"


ROLE, WORD, STOP, DONE = (frame(CORPUS[n]) for n in ("role chunk", "plain content", "finish stop", "done"))


@pytest.mark.parametrize("name", list(CORPUS))
def test_every_check_gives_the_same_verdict_on_either_path(name: str) -> None:
    frames = [ROLE, frame(CORPUS[name]), WORD, STOP, DONE]
    fast, strict = recorded(frames, strict=False), recorded(frames, strict=True)
    assert [fields(e) for e in fast.events] == [fields(e) for e in strict.events]
    assert (fast.text, fast.tool_calls) == (strict.text, strict.tool_calls)
    assert verdicts(fast) == verdicts(strict)


@pytest.mark.parametrize("reads", ["one read", "an event per read", "a byte per read"])
def test_the_whole_corpus_in_one_stream_gives_the_strict_exchange(reads: str) -> None:
    """All the odd events in one stream, read whole (one batch for the reader), event by event, or byte by byte:
    each way, the exchange and the verdicts are the strict path's, and the events are the same each way."""
    body = [ROLE, *(frame(data) for data in CORPUS.values() if not data.startswith(b"[DONE]")), STOP, DONE]
    joined = b"".join(body)
    frames = {"one read": [joined], "an event per read": body, "a byte per read": [joined[i : i + 1] for i in
              range(len(joined))]}[reads]  # fmt: skip
    fast, strict = recorded(frames, strict=False), recorded(frames, strict=True)
    assert [fields(e) for e in fast.events] == [fields(e) for e in strict.events]
    assert verdicts(fast) == verdicts(strict)
    reference = recorded(body, strict=True)
    assert [fields(e)[1:] for e in fast.events] == [fields(e)[1:] for e in reference.events]  # times differ
    assert len(fast.events) == len(CORPUS) + 1


BATCHES = {
    "ascii": b"data: a\n\ndata: b\n\ndata: c\n\n",
    "non-ascii": "data: héllo\n\ndata: 世界 🎉\n\ndata: x\n\n".encode(),
    "no space after the colon": b"data:a\n\ndata:  b\n\n",
    "empty data": b"data:\n\ndata: \n\ndata: x\n\n",
    "done in the middle": b"data: a\n\ndata: [DONE]\n\ndata: late\n\ndata: [DONE]\n\n",
    "a blank line too many": b"data: a\n\n\n\ndata: b\n\n",
    "two data lines": b"data: a\ndata: b\n\ndata: c\n\n",
    "a field line": b"data: a\n\nevent: x\ndata: b\n\n",
    "a comment": b"data: a\n\n: ping\n\ndata: b\n\n",
    "data inside a value": b"data: a\n\ndata: b data: c\n\n",
    "invalid UTF-8": b"data: a\n\ndata: \xc3\x28\n\n",
    "a lone LF at the end": b"data: a\n\ndata: b\n",
}


@pytest.mark.parametrize("name", list(BATCHES))
def test_a_read_of_several_events_decodes_as_byte_by_byte(name: str) -> None:
    """The decoder's one-pass reading of a chunk of whole events gives what its line-by-line path gives."""
    stream = BATCHES[name]
    whole = SSEDecoder()
    events = whole.feed(stream, 1.0) + whole.close(1.0)
    by_byte = SSEDecoder()
    expected = [e for i in range(len(stream)) for e in by_byte.feed(stream[i : i + 1], 1.0)] + by_byte.close(1.0)
    assert events == expected
    assert (whole.deviations, whole.deviation_counts) == (by_byte.deviations, by_byte.deviation_counts)

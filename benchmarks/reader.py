"""The reader's hot path: our per-event work against the full-JSON-tree path it replaced, in the same run.

Per event, the reader decodes the SSE framing and takes out what the checks and the clock need (content,
tool-call fragments, finish_reason, a top-level error, whether `choices` is a list). The baseline is the path
kept as `ParsedEvent.parse_strict`: the stdlib's JSON tree of every event (NaN refused, as `JSON.parse` does).
The candidates for the fast path run beside it on the same events: orjson's and msgspec's full trees, and
msgspec's typed decode of just those fields (`ParsedEvent.parse`, the one in use). Then the whole `Recorder`,
framing included, with either parse, reading one event per read (a paced stream at low load) and five (what a
read holds at 200 streams).

The streams: the fake LLM's own frames (a 50-chunk spoken reply, as `loadgen.py` plays it, and its tool-call
reply) and a tool call whose arguments arrive in 4-character fragments, as OpenAI sends them. Times are CPU
time (`time.process_time`), the least of `--repeat` runs, so other work on the machine counts for little.

    python -m benchmarks.reader [--repeat 7] [--rounds 300]
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Callable
from typing import Any

import msgspec

from harness.fake_llm.script import FakeLLMConfig, plan_reply
from harness.protocol import SSEDecoder, SSEEvent, chunk, encode_event
from mock_vapi import CustomLLMModel, MetadataSendMode, build_request
from mock_vapi.exchange import Exchange, ParsedEvent, Recorder, js_truthy

__all__ = ["main"]

_EVENTS_PER_READ = 5  # what one read of a 200-stream load run holds on average (measured with cProfile's counts)
_MESSAGES = [{"role": "user", "content": "What is the weather in Paris?"}]
_TOOL = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "parameters": {"type": "object", "properties": {"location": {"type": "string"}}},
    },
}


def _fake_llm_frames(config: FakeLLMConfig, body: dict[str, Any]) -> list[bytes]:
    return [frame.data for frame in plan_reply(config, body, "chatcmpl-bench") if frame.data]


def _fragmented_tool_call() -> list[bytes]:
    arguments = json.dumps({"location": "Paris, France", "unit": "celsius", "days": 3, "detail": "hourly"})
    head = {"index": 0, "id": "call_1", "type": "function", "function": {"name": "get_weather", "arguments": ""}}
    frames = [encode_event(chunk("c1", "m", {"role": "assistant", "content": None}, created=1))]
    frames.append(encode_event(chunk("c1", "m", {"tool_calls": [head]}, created=1)))
    for i in range(0, len(arguments), 4):
        fragment = {"index": 0, "function": {"arguments": arguments[i : i + 4]}}
        frames.append(encode_event(chunk("c1", "m", {"tool_calls": [fragment]}, created=1)))
    frames.append(encode_event(chunk("c1", "m", {}, finish_reason="tool_calls", created=1)))
    return [*frames, b"data: [DONE]\n\n"]


def streams() -> dict[str, list[bytes]]:
    """The byte streams the benchmark reads, one frame per read, by name."""
    words = " ".join(f"w{i}" for i in range(49))
    return {
        "fake LLM, 50-chunk reply": _fake_llm_frames(FakeLLMConfig(reply=words), {"messages": _MESSAGES}),
        "fake LLM, tool call": _fake_llm_frames(
            FakeLLMConfig(tool_mode="always"), {"messages": _MESSAGES, "tools": [_TOOL]}
        ),
        "tool call, 4-char fragments": _fragmented_tool_call(),
    }


def _facts_of_tree(tree: Any) -> tuple[str, Any, bool, bool, bool]:
    """What `ParsedEvent.parse_strict` takes from a full tree: content, tool calls, finishes, error, choices."""
    if not isinstance(tree, dict):
        return "", (), False, False, False
    choices = tree.get("choices")
    if not isinstance(choices, list):
        return "", (), False, js_truthy(tree.get("error")), False
    finishes = any(isinstance(c, dict) and c.get("finish_reason") for c in choices)
    first = choices[0] if choices and isinstance(choices[0], dict) else None
    delta = first.get("delta") if first is not None else None
    content = delta.get("content") if isinstance(delta, dict) else None
    calls = delta.get("tool_calls") if isinstance(delta, dict) else None
    return (content if isinstance(content, str) else ""), calls or (), finishes, js_truthy(tree.get("error")), True


def _orjson_full_tree(sse: SSEEvent) -> Any:
    import orjson

    return _facts_of_tree(orjson.loads(sse.data))


_MSGSPEC_ANY = msgspec.json.Decoder()


def _msgspec_full_tree(sse: SSEEvent) -> Any:
    return _facts_of_tree(_MSGSPEC_ANY.decode(sse.data))


def _events_of(frames: list[bytes]) -> list[SSEEvent]:
    decoder = SSEDecoder()
    events = [e for i, frame in enumerate(frames) for e in decoder.feed(frame, float(i))]
    return [e for e in events if not e.is_done]


def _cpu_us_per_call(work: Callable[[], int], repeat: int) -> float:
    """The least CPU time per counted item over `repeat` runs of `work`, which returns how many it did."""
    best = float("inf")
    for _ in range(repeat):
        started = time.process_time()
        count = work()
        best = min(best, (time.process_time() - started) / count)
    return best * 1e6


def _parse_cost(events: list[SSEEvent], parse: Callable[[SSEEvent], Any], rounds: int, repeat: int) -> float:
    def work() -> int:
        for _ in range(rounds):
            for event in events:
                parse(event)
        return rounds * len(events)

    return _cpu_us_per_call(work, repeat)


def _recorder_cost(frames: list[bytes], parse: Callable[[SSEEvent], ParsedEvent], rounds: int, repeat: int) -> float:
    request = build_request(CustomLLMModel(url="http://127.0.0.1:9/v1", model="m",
                                           metadata_send_mode=MetadataSendMode.OFF), _MESSAGES)  # fmt: skip

    def work() -> int:
        events = 0
        for _ in range(rounds):
            exchange = Exchange(request, 0.0)
            reader = Recorder(exchange, parse=parse)
            for i, frame in enumerate(frames):
                reader.feed(frame, float(i))
            reader.end_of_body(float(len(frames)))
            reader.finish(float(len(frames)))
            events += len(exchange.events)
        return events

    return _cpu_us_per_call(work, repeat)


def _have_orjson() -> bool:
    try:
        import orjson  # noqa: F401
    except ImportError:
        return False
    return True


def main(argv: list[str] | None = None) -> int:
    """Print each path's CPU per event over each stream, and the baseline's cost over ours."""
    parser = argparse.ArgumentParser(prog="python -m benchmarks.reader", description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=7, help="runs of each measurement; the least counts")
    parser.add_argument("--rounds", type=int, default=300, help="times each stream is read per run")
    args = parser.parse_args(argv)
    if args.repeat < 1 or args.rounds < 1:
        sys.stderr.write("--repeat and --rounds must be at least 1\n")
        return 2
    parses: dict[str, Callable[[SSEEvent], Any]] = {"stdlib json, full tree (baseline)": ParsedEvent.parse_strict}
    if _have_orjson():
        parses["orjson, full tree"] = _orjson_full_tree
    parses["msgspec, full tree"] = _msgspec_full_tree
    parses["msgspec, typed fields (ours)"] = ParsedEvent.parse
    lines = []
    for name, frames in streams().items():
        events = _events_of(frames)
        lines.append(f"{name}: {len(frames)} frames")
        costs = {label: _parse_cost(events, parse, args.rounds, args.repeat) for label, parse in parses.items()}
        baseline = costs["stdlib json, full tree (baseline)"]
        for label, cost in costs.items():
            lines.append(f"  parse  {label:<36} {cost:6.2f} µs/event  {baseline / cost:5.2f}x")
        batched = [b"".join(frames[i : i + _EVENTS_PER_READ]) for i in range(0, len(frames), _EVENTS_PER_READ)]
        for reads, stream in (("1 event per read", frames), (f"{_EVENTS_PER_READ} events per read", batched)):
            strict = _recorder_cost(stream, ParsedEvent.parse_strict, args.rounds, args.repeat)
            ours = _recorder_cost(stream, ParsedEvent.parse, args.rounds, args.repeat)
            lines.append(f"  Recorder, {reads:<17} strict parse  {strict:6.2f} µs/event")
            lines.append(f"  Recorder, {reads:<17} ours          {ours:6.2f} µs/event  {strict / ours:5.2f}x")
    sys.stdout.write("\n".join(lines) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())

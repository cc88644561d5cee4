"""Replay: the requests of a recording (`vapi-harness proxy --record`) as probes, each with its recorded outcome."""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from harness.checks import RecordedReply
from harness.protocol import RECORDING_VERSION, delta_content, delta_tool_calls, tool_call_name
from harness.suite import Probe
from mock_vapi import CustomLLMModel, build_request
from mock_vapi.errors import ConfigError

__all__ = ["load_recording", "recorded_outcome"]


def recorded_outcome(response: Mapping[str, Any]) -> RecordedReply:
    """What a recorded reply did: its status, the tools it called, whether it said anything."""
    tool_names: set[str] = set()
    has_content = False
    payloads: list[Any] = []
    for event in response.get("events") or []:
        try:
            payloads.append(json.loads(event.get("data", "")))
        except ValueError:
            continue
    for payload in payloads:
        has_content = has_content or bool(delta_content(payload).strip())
        tool_names.update(name for fragment in delta_tool_calls(payload) if (name := tool_call_name(fragment)))
    body = response.get("body")
    if isinstance(body, dict) and isinstance(body.get("choices"), list) and body["choices"]:
        message = body["choices"][0].get("message") or {}
        has_content = has_content or bool(str(message.get("content") or "").strip())
        tool_names.update(name for call in message.get("tool_calls") or [] if (name := tool_call_name(call)))
    status = response.get("status")
    return RecordedReply(status if isinstance(status, int) else None, tuple(sorted(tool_names)), has_content)


def load_recording(path: Path, model: CustomLLMModel, api_key: str | None) -> list[Probe]:
    """One probe per recorded request, sent exactly as recorded; errors name the file and line."""
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except OSError as exc:
        raise ConfigError(f"--replay: cannot read {path}: {exc.strerror}") from None
    probes = []
    for number, line in enumerate(lines, 1):
        if not line.strip():
            continue
        where = f"{path}:{number}"
        try:
            entry = json.loads(line)
        except ValueError as exc:
            raise ConfigError(f"{where}: not a JSON line: {exc}") from None
        if not isinstance(entry, dict) or entry.get("version") != RECORDING_VERSION:
            raise ConfigError(
                f"{where}: $.version: expected {RECORDING_VERSION} (a line written by vapi-harness proxy --record)"
            )
        body = (entry.get("request") or {}).get("body")
        if not isinstance(body, dict) or not isinstance(body.get("messages"), list):
            raise ConfigError(f"{where}: $.request.body.messages: missing; is this a recording?")
        request = build_request(model, body["messages"], api_key=api_key).with_json_body(body)
        call_id = (body.get("call") or {}).get("id") if isinstance(body.get("call"), dict) else None
        description = f"{path.name}:{number}" + (f", call {call_id}" if call_id else "")
        reference = recorded_outcome(entry.get("response") or {})
        probes.append(Probe(f"replay_{number}", description, request, reference=reference))
    if not probes:
        raise ConfigError(f"--replay: {path} holds no recorded requests")
    return probes

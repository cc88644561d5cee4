"""Build the exact HTTP request Vapi sends to a `custom-llm` model for one turn.

This module is the one source of Vapi requests: the checks, the call simulator, the mock Vapi
API and the load profiles all call `build_request`. Facts and their confidence are in the
protocol notes; where they are unsure, `ClientProfile` and the keyword arguments are switches
with the documented default.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from enum import StrEnum
from typing import Any

from harness.protocol import base_url_problems, completions_url
from mock_vapi.context import CallContext
from mock_vapi.tools import UnknownToolType, openai_tool

__all__ = [
    "DEFAULT_CLIENT",
    "ClientProfile",
    "CustomLLMModel",
    "InvalidModelConfig",
    "MetadataSendMode",
    "VapiRequest",
    "build_request",
    "completions_url",
    "openai_tools",
    "url_problems",
]


class InvalidModelConfig(ValueError):
    """A Vapi model config that Vapi itself would reject; the message names the field."""


class MetadataSendMode(StrEnum):
    """`model.metadataSendMode`: which Vapi extras ride along in the body (default `variable`)."""

    OFF = "off"
    VARIABLE = "variable"
    DESTRUCTURED = "destructured"


@dataclass(frozen=True)
class ClientProfile:
    """Who Vapi's HTTP client says it is: the OpenAI JS SDK's default headers (confidence: medium)."""

    sdk_version: str = "4.104.0"
    runtime_version: str = "v20.19.0"
    os: str = "Linux"
    arch: str = "x64"
    # Newer SDKs add `X-Stainless-Timeout`; no capture shows Vapi sending it.
    send_timeout_header: bool = False

    def headers(self, timeout_s: float) -> dict[str, str]:
        """The SDK's default headers, in the order it sets them."""
        headers = {
            "Accept": "application/json",
            "Content-Type": "application/json",
            "User-Agent": f"OpenAI/JS {self.sdk_version}",
            "X-Stainless-Lang": "js",
            "X-Stainless-Package-Version": self.sdk_version,
            "X-Stainless-OS": self.os,
            "X-Stainless-Arch": self.arch,
            "X-Stainless-Runtime": "node",
            "X-Stainless-Runtime-Version": self.runtime_version,
            "X-Stainless-Retry-Count": "0",
        }
        if self.send_timeout_header:
            headers["X-Stainless-Timeout"] = str(int(timeout_s))
        return headers


DEFAULT_CLIENT = ClientProfile()


@dataclass(frozen=True)
class CustomLLMModel:
    """An assistant's `model` object for `provider: custom-llm`, with Vapi's defaults."""

    url: str
    model: str
    messages: tuple[dict[str, Any], ...] = ()
    temperature: float = 0.5
    max_tokens: int = 250
    tools: tuple[dict[str, Any], ...] = ()
    metadata_send_mode: MetadataSendMode = MetadataSendMode.VARIABLE
    headers: Mapping[str, str] = field(default_factory=dict)
    timeout_s: float = 20.0

    @classmethod
    def from_vapi(cls, obj: Mapping[str, Any], where: str = "model") -> CustomLLMModel:
        """Read Vapi's camelCase model object, checking what Vapi requires; errors name the field."""
        if not isinstance(obj, Mapping):
            raise InvalidModelConfig(f"{where}: must be an object, got {type(obj).__name__}")
        provider = obj.get("provider", "custom-llm")
        if provider != "custom-llm":
            raise InvalidModelConfig(f"{where}.provider: expected 'custom-llm', got {provider!r}")
        for key in ("url", "model"):
            if not isinstance(obj.get(key), str) or not obj[key]:
                raise InvalidModelConfig(f"{where}.{key}: required, a non-empty string")
        mode = obj.get("metadataSendMode", MetadataSendMode.VARIABLE.value)
        try:
            send_mode = MetadataSendMode(mode)
        except ValueError:
            choices = ", ".join(m.value for m in MetadataSendMode)
            raise InvalidModelConfig(f"{where}.metadataSendMode: {mode!r} is not one of {choices}") from None
        headers = obj.get("headers") or {}
        if not isinstance(headers, Mapping) or not all(isinstance(v, str) for v in headers.values()):
            raise InvalidModelConfig(f"{where}.headers: must be an object of strings")
        temperature = _number(obj, "temperature", 0.5, 0, 2, where)
        max_tokens = int(_number(obj, "maxTokens", 250, 50, 10000, where))
        timeout_s = _number(obj, "timeoutSeconds", 20, 0, 600, where)
        messages = obj.get("messages") or []
        if not isinstance(messages, list) or not all(isinstance(m, dict) and "role" in m for m in messages):
            raise InvalidModelConfig(f"{where}.messages: must be a list of {{role, content}} objects")
        tools = obj.get("tools") or []
        openai_tools(tools, f"{where}.tools")  # validates
        return cls(
            url=obj["url"],
            model=obj["model"],
            messages=tuple(messages),
            temperature=temperature,
            max_tokens=max_tokens,
            tools=tuple(tools),
            metadata_send_mode=send_mode,
            headers=dict(headers),
            timeout_s=timeout_s,
        )

    def with_(self, **changes: Any) -> CustomLLMModel:
        """A copy with some fields changed."""
        return replace(self, **changes)


def _number(obj: Mapping[str, Any], key: str, default: float, low: float, high: float, where: str) -> float:
    value = obj.get(key, default)
    if isinstance(value, bool) or not isinstance(value, int | float) or not low <= value <= high:
        raise InvalidModelConfig(f"{where}.{key}: must be a number from {low:g} to {high:g}, got {value!r}")
    return float(value)


@dataclass(frozen=True)
class VapiRequest:
    """One HTTP request exactly as Vapi would send it."""

    method: str
    url: str
    headers: tuple[tuple[str, str], ...]
    body: bytes
    stream: bool
    timeout_s: float
    json_body: Mapping[str, Any] | None = None

    def header(self, name: str) -> str | None:
        """The value of header `name` (case-insensitive), or None."""
        lowered = name.lower()
        return next((v for k, v in self.headers if k.lower() == lowered), None)

    def with_headers(self, **changes: str | None) -> VapiRequest:
        """A copy with headers set (a value) or removed (None); names use `_` for `-`."""
        wanted = {k.replace("_", "-").lower(): v for k, v in changes.items()}
        kept = [(k, v) for k, v in self.headers if k.lower() not in wanted]
        kept += [(k.title(), v) for k, v in wanted.items() if v is not None]
        return replace(self, headers=tuple(kept))

    def with_body(self, body: bytes) -> VapiRequest:
        """A copy with a raw body (for malformed-input probes)."""
        return replace(self, body=body, json_body=None)

    def with_json_body(self, body: Mapping[str, Any]) -> VapiRequest:
        """A copy sending exactly `body` (a recorded request), streaming as the body says."""
        raw = json.dumps(body, separators=(",", ":"), ensure_ascii=False).encode()
        return replace(self, body=raw, json_body=dict(body), stream=bool(body.get("stream")))


def url_problems(base_url: str) -> list[str]:
    """Ways a configured `model.url` would break once Vapi appends `/chat/completions` (`base_url_problems`)."""
    return [f"model.url {problem}" for problem in base_url_problems(base_url)]


def openai_tools(tools: Sequence[Mapping[str, Any]], where: str = "model.tools") -> list[dict[str, Any]]:
    """Turn Vapi tool configs into the OpenAI `tools` array Vapi sends (each by `mock_vapi.tools.openai_tool`)."""
    if not isinstance(tools, Sequence) or isinstance(tools, str):
        raise InvalidModelConfig(f"{where}: must be a list of tools")
    result: list[dict[str, Any]] = []
    for i, tool in enumerate(tools):
        if not isinstance(tool, Mapping):
            raise InvalidModelConfig(f"{where}[{i}].type: a tool must be an object with a type")
        try:
            result.append(openai_tool(tool, f"{where}[{i}]"))
        except UnknownToolType as exc:
            raise InvalidModelConfig(str(exc)) from None
    return result


def build_request(
    model: CustomLLMModel,
    messages: Sequence[Mapping[str, Any]],
    *,
    context: CallContext | None = None,
    api_key: str | None = None,
    stream: bool = True,
    extra_body: Mapping[str, Any] | None = None,
    client: ClientProfile = DEFAULT_CLIENT,
) -> VapiRequest:
    """The request for one turn: `messages` is the whole history Vapi re-sends (system prompt included).

    Args:
        extra_body: OpenAI parameters Vapi is not known to send (`tool_choice`, `stream_options`, ...),
            for probes that switch them on.
    """
    body: dict[str, Any] = {
        "model": model.model,
        "messages": [dict(m) for m in messages],
        "temperature": model.temperature,
        "max_tokens": model.max_tokens,
        "stream": stream,
    }
    if model.tools:
        body["tools"] = openai_tools(model.tools)
    if extra_body:
        body.update(extra_body)
    if model.metadata_send_mode is not MetadataSendMode.OFF:
        context = context or CallContext.inbound_phone_call()
        if model.metadata_send_mode is MetadataSendMode.DESTRUCTURED:
            for key, value in context.metadata.items():
                body.setdefault(key, value)
        else:
            body["metadata"] = dict(context.metadata)
        body.update(context.objects())
    headers = client.headers(model.timeout_s)
    # model.headers may override the SDK's defaults, but never Authorization (credentials only).
    for name, value in model.headers.items():
        if name.lower() != "authorization":
            headers = {k: v for k, v in headers.items() if k.lower() != name.lower()}
            headers[name] = value
    if api_key:
        headers["Authorization"] = f"Bearer {api_key}"
    return VapiRequest(
        method="POST",
        url=completions_url(model.url),
        headers=tuple(headers.items()),
        body=json.dumps(body, separators=(",", ":"), ensure_ascii=False).encode(),
        stream=stream,
        timeout_s=model.timeout_s,
        json_body=body,
    )

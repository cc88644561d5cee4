"""Calling an assistant's model the way Vapi does: which URL, which key, which request, and what is kept.

`custom-llm` models are called at their `url` with the credential's key as `Authorization: Bearer`, their
`headers` and `metadataSendMode`. Provider models (`openai`, `openrouter`, ...) are called at that provider's
base URL, from a map the mock is started with (so tests can point them at a fake upstream), without Vapi's
call metadata.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import aiohttp

from harness.protocol import Redactor
from mock_vapi.api.store import Store, now_iso
from mock_vapi.api.validate import ApiError
from mock_vapi.context import CallContext
from mock_vapi.exchange import Exchange, ParsedEvent
from mock_vapi.reader import ReadLimits, read_into
from mock_vapi.request import CustomLLMModel, build_request
from mock_vapi.timing import exchange_metrics

__all__ = ["DEFAULT_PROVIDER_URLS", "ResolvedModel", "record_exchange", "resolve_model", "run_turn"]

DEFAULT_PROVIDER_URLS = {
    "openai": "https://api.openai.com/v1",
    "openrouter": "https://openrouter.ai/api/v1",
    "together-ai": "https://api.together.xyz/v1",
    "anyscale": "https://api.endpoints.anyscale.com/v1",
    "groq": "https://api.groq.com/openai/v1",
}


@dataclass(frozen=True)
class ResolvedModel:
    """What a request to the assistant's model needs: the model fields, where to send them, and the key."""

    provider: str
    fields: dict[str, Any]  # Vapi model fields as `CustomLLMModel.from_vapi` reads them (url included)
    api_key: str | None
    credential_id: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    def model(self) -> CustomLLMModel:
        """The model object the request builder takes."""
        return CustomLLMModel.from_vapi(self.fields, where="assistant.model")


def _credential(store: Store, assistant: Mapping[str, Any], provider: str) -> tuple[str | None, str | None]:
    """The key for `provider`: the assistant's inline credentials, then its credentialIds, then the org's newest."""
    candidates = [c.get("id") for c in assistant.get("credentials") or [] if c.get("provider") == provider]
    for credential_id in assistant.get("credentialIds") or []:
        stored = store.get("credential", credential_id)
        if stored is not None and stored.get("provider") == provider:
            candidates.append(credential_id)
    candidates += [c["id"] for c in store.query("credential", limit=1000, where={"provider": provider})]
    for credential_id in candidates:
        if credential_id and (key := store.secret(credential_id)) is not None:
            return credential_id, key
    return None, None


def resolve_model(store: Store, assistant: Mapping[str, Any], provider_urls: Mapping[str, str]) -> ResolvedModel:
    """Where and how to call the assistant's model; `ApiError` 400 when it cannot be called."""
    model = assistant.get("model")
    if not isinstance(model, Mapping):
        raise ApiError(400, ["assistant.model is required to talk to the assistant"])
    provider = str(model.get("provider"))
    fields = {k: v for k, v in model.items() if k not in ("provider",)}
    if provider == "custom-llm":
        url = str(model.get("url"))
    elif provider in provider_urls:
        url = provider_urls[provider]
        fields["metadataSendMode"] = "off"  # call metadata is for custom LLMs; a provider API would reject it
        fields.pop("headers", None)
    else:
        raise ApiError(400, [f"model.provider {provider!r} has no base URL configured in this mock"])
    fields["url"] = url
    credential_id, key = _credential(store, assistant, provider)
    if provider != "custom-llm" and key is None:
        raise ApiError(400, [f"no {provider} credential: POST /credential with provider {provider!r} first"])
    return ResolvedModel(provider, fields, key, credential_id)


def record_exchange(store: Store, exchange: Exchange, kind: str, resource_id: str) -> None:
    """Keep what was sent to the model, secrets redacted, for `GET /debug/requests`."""
    request = exchange.request
    redactor = Redactor([resolved_key] if (resolved_key := _bearer(request.headers)) else [])
    metrics = exchange_metrics(exchange)
    store.record_sent(
        {
            "time": now_iso(),
            "for": {"type": kind, "id": resource_id},
            "method": request.method,
            "url": redactor.text(request.url),
            "headers": redactor.headers(request.headers),
            "body": redactor.deep(request.json_body),
            "response": {"status": exchange.status, "outcome": exchange.outcome.value, "error": exchange.error},
            "timings": {k: metrics[k] for k in ("headers_ms", "ttft_ms", "first_sentence_ms", "total_ms")},
        }
    )


def _bearer(headers: Sequence[tuple[str, str]]) -> str | None:
    """The key sent as `Authorization: Bearer`, so it is also hidden where it appears in the URL or body."""
    value = next((v for k, v in headers if k.lower() == "authorization"), "")
    return value.removeprefix("Bearer ").strip() or None


async def run_turn(
    session: aiohttp.ClientSession,
    resolved: ResolvedModel,
    messages: Sequence[Mapping[str, Any]],
    context: CallContext,
    *,
    on_events: Callable[[list[ParsedEvent]], None] | None = None,
) -> Exchange:
    """One streamed request to the model, read the way Vapi reads it."""
    model = resolved.model()
    request = build_request(model, messages, context=context, api_key=resolved.api_key, stream=True)
    exchange = Exchange(request, time.perf_counter())
    limits = ReadLimits(deadline_s=model.timeout_s + 30, close_grace_s=2.0)
    return await read_into(session, exchange, limits, on_events=on_events)

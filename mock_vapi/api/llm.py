"""Calling an assistant's model the way Vapi does: which URL, which key, which request, and what is kept.

`custom-llm` models are called at their `url` with the credential's key as `Authorization: Bearer`, their
`headers` and `metadataSendMode`. Provider models (`openai`, `openrouter`, ...) are called at that provider's
base URL, from a map the mock is started with (so tests can point them at a fake upstream), without Vapi's
call metadata.

A `custom-llm` credential with an OAuth2 `authenticationPlan` sends a client-credentials token instead of its
key (`TokenSources`: one per credential for the app's life, reused while valid). `RetryPolicy` is the OpenAI
SDK's retry switch (off by default: Vapi is not known to retry). An assistant's `model.toolIds` become inline
tools here (`with_tools_by_id`), so chats and calls send one list of tools.
"""

from __future__ import annotations

import asyncio
import email.utils
import random
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

import aiohttp

from harness.protocol import Redactor
from mock_vapi.api.store import Store, now_iso
from mock_vapi.api.validate import ApiError
from mock_vapi.context import CallContext
from mock_vapi.exchange import Exchange, Outcome, ParsedEvent
from mock_vapi.oauth2 import ClientAuth, OAuth2Plan, TokenSource
from mock_vapi.reader import Abort, ReadLimits, read_into
from mock_vapi.request import CustomLLMModel, InvalidModelConfig, VapiRequest, build_request
from mock_vapi.timing import exchange_metrics

__all__ = [
    "DEFAULT_PROVIDER_URLS",
    "NO_RETRIES",
    "ResolvedModel",
    "RetryPolicy",
    "TokenSources",
    "record_exchange",
    "resolve_model",
    "run_turn",
    "send_with_retries",
    "tool_ids",
    "with_tools_by_id",
]

DEFAULT_PROVIDER_URLS = {
    "openai": "https://api.openai.com/v1",
    "openrouter": "https://openrouter.ai/api/v1",
    "together-ai": "https://api.together.xyz/v1",
    "anyscale": "https://api.endpoints.anyscale.com/v1",
    "groq": "https://api.groq.com/openai/v1",
}


_RETRIED_STATUSES = frozenset({408, 409, 429})
_RETRIED_OUTCOMES = frozenset({Outcome.CONNECT_ERROR, Outcome.HEADERS_TIMEOUT})  # the SDK's connection errors


@dataclass(frozen=True)
class RetryPolicy:
    """The OpenAI SDK's retries (Vapi's client is the OpenAI JS SDK, 4.x): on a connection error, a timeout
    before the headers, or HTTP 408, 409, 429 and 5xx (`x-should-retry` overrides), after 0.5 s doubling to at
    most 8 s, less up to 25 % jitter, or after the reply's `Retry-After-Ms` / `Retry-After` when under 60 s.
    Whether Vapi retries is unknown (low confidence), so the mock's default is none: the first failure ends it."""

    max_retries: int = 0
    initial_delay_s: float = 0.5
    max_delay_s: float = 8.0
    max_retry_after_s: float = 60.0

    def should_retry(self, exchange: Exchange) -> bool:
        """True when the SDK would send `exchange`'s request again (retries left or not)."""
        if exchange.status is None:
            return exchange.outcome in _RETRIED_OUTCOMES
        if 200 <= exchange.status < 300:
            return False
        directive = exchange.headers.get("x-should-retry")
        if directive in ("true", "false"):
            return directive == "true"
        return exchange.status in _RETRIED_STATUSES or exchange.status >= 500

    def delay_s(self, retry: int, headers: Mapping[str, str], jitter: float | None = None) -> float:
        """How long the SDK waits before retry number `retry` (0 for the first); `jitter` in [0, 1)."""
        after = _retry_after_s(headers)
        if after is not None and 0 < after < self.max_retry_after_s:
            return after
        jitter = random.random() if jitter is None else jitter
        return min(self.initial_delay_s * 2.0**retry, self.max_delay_s) * (1 - 0.25 * jitter)


NO_RETRIES = RetryPolicy()


def _retry_after_s(headers: Mapping[str, str]) -> float | None:
    """`Retry-After-Ms`, else `Retry-After` in seconds or as an HTTP date (headers keyed in lower case)."""
    for name, divisor in (("retry-after-ms", 1000.0), ("retry-after", 1.0)):
        try:
            return float(headers[name]) / divisor
        except (KeyError, ValueError):
            continue
    try:
        when = email.utils.parsedate_to_datetime(headers["retry-after"])
    except (KeyError, TypeError, ValueError):
        return None
    return when.timestamp() - time.time()


class TokenSources:
    """One OAuth2 `TokenSource` per credential for the app's life, so a token is reused across chats and calls
    while it is valid; a credential whose plan changed gets a new source. `client_auth` is the switch for how
    the client secret is sent (undocumented by Vapi: the form body by default, or HTTP basic)."""

    def __init__(self, client_auth: ClientAuth = "body", clock: Callable[[], float] = time.monotonic) -> None:
        self.client_auth = client_auth
        self._clock = clock
        self._sources: dict[str, TokenSource] = {}

    def source(self, credential_id: str, plan: Mapping[str, Any]) -> TokenSource:
        """The source for a credential's `authenticationPlan`; ValueError naming a missing field."""
        wanted = OAuth2Plan.from_vapi(plan, self.client_auth)
        kept = self._sources.get(credential_id)
        if kept is None or kept.plan != wanted:
            kept = self._sources[credential_id] = TokenSource(wanted, clock=self._clock)
        return kept


@dataclass(frozen=True)
class ResolvedModel:
    """What a request to the assistant's model needs: the model fields, where to send them, and the key."""

    provider: str
    fields: dict[str, Any]  # Vapi model fields as `CustomLLMModel.from_vapi` reads them (url and tools included)
    api_key: str | None  # the credential's static key (with an OAuth2 plan, ask `current_key`)
    credential_id: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)
    token_source: TokenSource | None = None  # the credential's OAuth2 plan
    retries: RetryPolicy = NO_RETRIES

    def model(self) -> CustomLLMModel:
        """The model object the request builder takes."""
        return CustomLLMModel.from_vapi(self.fields, where="assistant.model")

    async def current_key(self, session: aiohttp.ClientSession) -> str | None:
        """The key to send now as `Authorization: Bearer`: a valid OAuth2 token when the credential has a plan
        (fetched, or reused while valid; `mock_vapi.oauth2.TokenError` when the token endpoint fails), else
        the static key."""
        if self.token_source is not None:
            return await self.token_source.token(session)
        return self.api_key


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


def tool_ids(model: Mapping[str, Any]) -> list[str]:
    """The ids `model.toolIds` and `model.toolRefs` name, in order, each once."""
    ids = [i for i in model.get("toolIds") or [] if isinstance(i, str)]
    refs = model.get("toolRefs") or []
    ids += [r["toolId"] for r in refs if isinstance(r, Mapping) and isinstance(r.get("toolId"), str)]
    return list(dict.fromkeys(ids))


def with_tools_by_id(store: Store, assistant: Mapping[str, Any]) -> dict[str, Any]:
    """The assistant with the stored tools its model names by id after its inline `model.tools` (and no
    `toolIds` or `toolRefs` left); `ApiError` 400 when a named tool was deleted since."""
    model = assistant.get("model")
    if not isinstance(model, Mapping) or not tool_ids(model):
        return dict(assistant)
    found = []
    for tool_id in tool_ids(model):
        tool = store.get("tool", tool_id)
        if tool is None:
            raise ApiError(400, [f"model.toolIds: tool {tool_id} does not exist"])
        found.append(tool)
    inline = [dict(t) for t in model.get("tools") or []]
    rest = {k: v for k, v in model.items() if k not in ("toolIds", "toolRefs")}
    return {**assistant, "model": {**rest, "tools": [*inline, *found]}}


def _token_source(store: Store, credential_id: str | None, tokens: TokenSources | None) -> TokenSource | None:
    if credential_id is None or tokens is None:
        return None
    plan = store.secret_extra(credential_id).get("authenticationPlan")
    if not isinstance(plan, Mapping):
        return None
    try:
        return tokens.source(credential_id, plan)
    except ValueError as exc:
        raise ApiError(400, [f"credential {credential_id}: {exc}"]) from None


def resolve_model(
    store: Store,
    assistant: Mapping[str, Any],
    provider_urls: Mapping[str, str],
    *,
    tokens: TokenSources | None = None,
    retries: RetryPolicy = NO_RETRIES,
) -> ResolvedModel:
    """Where and how to call the assistant's model, its tools by id inlined; `ApiError` 400 when it cannot be
    called. With `tokens`, a credential's OAuth2 plan gives the key (`ResolvedModel.current_key`)."""
    assistant = with_tools_by_id(store, assistant)
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
    token_source = _token_source(store, credential_id, tokens) if provider == "custom-llm" else None
    resolved = ResolvedModel(provider, fields, key, credential_id, token_source=token_source, retries=retries)
    try:
        resolved.model()  # what the request builder refuses (a tool it cannot send) is a 400, never a 500
    except InvalidModelConfig as exc:
        raise ApiError(400, [str(exc)]) from None
    return resolved


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


def _with_retry_count(request: VapiRequest, retry: int) -> VapiRequest:
    """The request the SDK sends again: the same, with `X-Stainless-Retry-Count` counting the retries."""
    headers = [(k, str(retry) if k.lower() == "x-stainless-retry-count" else v) for k, v in request.headers]
    return replace(request, headers=tuple(headers))


async def send_with_retries(
    session: aiohttp.ClientSession,
    request: VapiRequest,
    limits: ReadLimits,
    retries: RetryPolicy,
    *,
    abort: Abort = Abort.NEVER,
    on_events: Callable[[list[ParsedEvent]], None] | None = None,
    on_exchange: Callable[[Exchange], None] | None = None,
) -> Exchange:
    """Send `request` and read the reply, again after the SDK's back-off while `retries` allows; the last
    exchange is returned, and `on_exchange` sees every one (to record them)."""
    retry = 0
    while True:
        sent = request if retry == 0 else _with_retry_count(request, retry)
        exchange = Exchange(sent, time.perf_counter())
        await read_into(session, exchange, limits, abort=abort, on_events=on_events)
        if on_exchange is not None:
            on_exchange(exchange)
        if retry >= retries.max_retries or not retries.should_retry(exchange):
            return exchange
        await asyncio.sleep(retries.delay_s(retry, exchange.headers))
        retry += 1


async def run_turn(
    session: aiohttp.ClientSession,
    resolved: ResolvedModel,
    messages: Sequence[Mapping[str, Any]],
    context: CallContext,
    *,
    on_events: Callable[[list[ParsedEvent]], None] | None = None,
    on_exchange: Callable[[Exchange], None] | None = None,
) -> Exchange:
    """One streamed request to the model, read the way Vapi reads it, retried as `resolved.retries` says.

    The key is `resolved.current_key` (`mock_vapi.oauth2.TokenError` when an OAuth2 token cannot be had)."""
    model = resolved.model()
    api_key = await resolved.current_key(session)
    request = build_request(model, messages, context=context, api_key=api_key, stream=True)
    limits = ReadLimits(deadline_s=model.timeout_s + 30, close_grace_s=2.0)
    return await send_with_retries(
        session, request, limits, resolved.retries, on_events=on_events, on_exchange=on_exchange
    )

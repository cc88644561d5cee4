"""Checks on the HTTP exchange itself: reachability, status, timeouts, a body that ends."""

from __future__ import annotations

from harness.checks.base import (
    CheckContext,
    CheckFailed,
    Expect,
    Severity,
    check,
    no_reply_reason,
    not_applicable,
    outcome_words,
)
from mock_vapi import url_problems
from mock_vapi.exchange import Exchange, Outcome
from mock_vapi.transcriber import extra_fields

ALL = tuple(Expect)
_VAPI_FIELDS = ("call", "phoneNumber", "customer", "metadata")


@check(Severity.ERROR, on=ALL, needs_success=False)
def endpoint_reachable(ctx: CheckContext, exchange: Exchange) -> None:
    """Vapi can open a connection to the endpoint."""
    if exchange.outcome is Outcome.CONNECT_ERROR:
        raise CheckFailed("Endpoint unreachable", exchange.error or "")


@check(Severity.ERROR, on=ALL, needs_success=False)
def headers_within_timeout(ctx: CheckContext, exchange: Exchange) -> None:
    """Response headers arrive within the model's `timeoutSeconds`; Vapi's client gives up otherwise."""
    if exchange.outcome is Outcome.HEADERS_TIMEOUT:
        raise CheckFailed("No response headers in time", exchange.error or "")
    if exchange.status is None:
        not_applicable(no_reply_reason(exchange))


@check(Severity.ERROR, on=(Expect.TURN, Expect.BARGE_IN), needs_success=False)
def status_is_success(ctx: CheckContext, exchange: Exchange) -> None:
    """A turn is answered with a 2xx status; any other status ends the call with a pipeline error."""
    if exchange.status is None:
        not_applicable(no_reply_reason(exchange))
    if 200 <= exchange.status < 300:
        return
    detail = f"HTTP {exchange.status}: {exchange.body_excerpt()}"
    body = exchange.request.json_body or {}
    extras = [k for k in _VAPI_FIELDS if k in body]
    if exchange.status in (400, 422) and extras:
        detail += (
            f"\nThe request carried Vapi's extra fields ({', '.join(extras)}). A strict OpenAI-compatible server "
            "rejects unknown fields: strip them before forwarding, or set the assistant's metadataSendMode to 'off'."
        )
    transcriber = extra_fields(body.get("messages"))
    if exchange.status in (400, 422) and transcriber:
        raise CheckFailed(
            f"HTTP {exchange.status} for a user message with {', '.join(transcriber)}",
            f"{detail}\nVapi adds the transcriber's word confidences or emotion to user messages when the assistant "
            "enables them (high confidence); their exact shape is not documented and this one is a guess (low "
            "confidence), so this only warns. A server that rejects unknown message fields refuses every turn of "
            "such an assistant: accept or strip `metadata` on messages.",
            severity=Severity.WARNING,
        )
    raise CheckFailed(f"HTTP {exchange.status} instead of 2xx", detail)


@check(Severity.ERROR, on=(Expect.TURN,), needs_success=False)
def body_is_complete(ctx: CheckContext, exchange: Exchange) -> None:
    """The connection does not break mid-body; Vapi's parser throws and the call fails."""
    if exchange.outcome is Outcome.BROKEN:
        if exchange.status is None:
            raise CheckFailed("The connection closed before any response", exchange.error or "")
        raise CheckFailed("Connection broke mid-body", f"{exchange.error} after {exchange.body_bytes} bytes")
    if exchange.status is None:
        not_applicable(no_reply_reason(exchange))
    if exchange.outcome is not Outcome.COMPLETE:
        not_applicable(f"the body was not read to its end ({outcome_words(exchange.outcome)})")


@check(Severity.ERROR, on=ALL, needs_success=False)
def response_is_http(ctx: CheckContext, exchange: Exchange) -> None:
    """The endpoint answers with a readable HTTP response: no redirect loop, no malformed status line or headers."""
    if exchange.outcome is Outcome.REDIRECT_LOOP:
        raise CheckFailed(f"Redirect loop after {len(exchange.redirects)} redirects", exchange.error or "")
    if exchange.outcome is Outcome.BAD_RESPONSE:
        raise CheckFailed("The reply is not valid HTTP", exchange.error or "")
    if exchange.status is None:
        not_applicable(no_reply_reason(exchange))


@check(Severity.ERROR, on=(Expect.TURN,))
def body_within_size_limit(ctx: CheckContext, exchange: Exchange) -> None:
    """The reply stays within the harness's size bound (an endless body never ends the turn)."""
    if exchange.outcome is Outcome.TOO_LARGE:
        raise CheckFailed("Reply too large", exchange.error or "")
    if exchange.outcome is not Outcome.COMPLETE:
        not_applicable(f"the body was not read to its end ({outcome_words(exchange.outcome)})")


@check(Severity.ERROR, on=(Expect.TURN,))
def response_ends_after_last_chunk(ctx: CheckContext, exchange: Exchange) -> None:
    """The body ends soon after the last chunk; Vapi holds buffered text until the stream ends."""
    if exchange.outcome in (Outcome.CLOSE_TIMEOUT, Outcome.IDLE_TIMEOUT, Outcome.DEADLINE):
        last = exchange.events[-1].sse.data[:120] if exchange.events else "(no event)"
        raise CheckFailed("The response did not end", f"{exchange.error}. Last event: {last!r}")
    if exchange.outcome is not Outcome.COMPLETE:
        not_applicable(f"the body was not read to its end ({outcome_words(exchange.outcome)})")


@check(Severity.WARNING, on=(Expect.TURN,), streamed=True)
def content_type_is_event_stream(ctx: CheckContext, exchange: Exchange) -> None:
    """A stream is served as `Content-Type: text/event-stream` (proxies and CDNs buffer anything else)."""
    content_type = exchange.headers.get("content-type", "")
    if not content_type.lower().startswith("text/event-stream"):
        raise CheckFailed("Content-Type is not text/event-stream", f"Content-Type: {content_type or '(none)'}")


@check(Severity.WARNING, on=(Expect.TURN,), needs_success=False)
def no_redirect(ctx: CheckContext, exchange: Exchange) -> None:
    """The endpoint answers at its URL without redirecting (a redirect costs a round trip on every turn)."""
    if exchange.outcome is Outcome.REDIRECT_LOOP:
        raise CheckFailed(f"Redirect loop after {len(exchange.redirects)} redirects", " -> ".join(exchange.redirects))
    if exchange.redirects:
        raise CheckFailed("The request was redirected", " -> ".join([*exchange.redirects, "final response"]))
    if exchange.status is None:
        not_applicable(no_reply_reason(exchange))


@check(Severity.WARNING, on=(Expect.TURN,), needs_success=False)
def model_url_is_base_url(ctx: CheckContext, exchange: Exchange) -> None:
    """`model.url` is a base URL; Vapi appends `/chat/completions` to it."""
    url = exchange.request.url
    if not url.endswith("/chat/completions"):
        not_applicable("the request URL does not end in /chat/completions")
    problems = url_problems(url[: -len("/chat/completions")])
    if problems:
        raise CheckFailed("The configured URL will not work as Vapi's base URL", "\n".join(problems))


@check(Severity.ERROR, on=(Expect.TURN,), needs_success=False)
def matches_recording(ctx: CheckContext, exchange: Exchange) -> None:
    """A replayed request does what the recorded one did: a 2xx, the same tool calls, something said."""
    reference = ctx.reference
    if reference is None:
        not_applicable("not a replayed request")
    is_ok = exchange.status is not None and 200 <= exchange.status < 300
    if reference.succeeded and not is_ok:
        raise CheckFailed(f"Recorded HTTP {reference.status}, replay got {exchange.status or exchange.outcome}")
    if not reference.succeeded:
        not_applicable(f"the recorded reply was not a success (HTTP {reference.status})")
    names = sorted(exchange.tool_call_names)
    recorded = list(reference.tool_names)
    if exchange.streamed and names != recorded:
        raise CheckFailed("The replay called other tools", f"Recorded {recorded}, replay {names}")
    if exchange.streamed and reference.has_content and not exchange.text.strip():
        raise CheckFailed("The recorded reply spoke; the replay said nothing")

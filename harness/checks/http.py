"""Checks on how the endpoint refuses: malformed bodies, wrong keys, error envelopes."""

from __future__ import annotations

from harness.checks.base import CheckContext, CheckFailed, Expect, Severity, check, no_reply_reason, not_applicable
from harness.protocol import schema_errors
from mock_vapi.exchange import INVALID_JSON, Exchange, Outcome


def _status(exchange: Exchange, what: str) -> int:
    if exchange.status is None:
        if exchange.outcome in (Outcome.CONNECT_ERROR, Outcome.REDIRECT_LOOP, Outcome.BAD_RESPONSE):
            not_applicable(no_reply_reason(exchange))  # endpoint_reachable and response_is_http say it
        raise CheckFailed(f"No answer to {what}", exchange.error or "")
    return exchange.status


@check(Severity.WARNING, on=(Expect.MALFORMED,), needs_success=False)
def malformed_request_rejected(ctx: CheckContext, exchange: Exchange) -> None:
    """A malformed body gets a prompt 4xx, not a 5xx, a 2xx or a hang."""
    status = _status(exchange, "a malformed body")
    if not 400 <= status < 500:
        raise CheckFailed(f"HTTP {status} for a malformed body, expected 4xx", exchange.body_excerpt())


@check(Severity.ERROR, on=(Expect.AUTH,), needs_success=False)
def rejects_wrong_api_key(ctx: CheckContext, exchange: Exchange) -> None:
    """With an API key configured, a wrong or missing key is refused: serving it opens the endpoint to anyone.

    Serving the request (a 2xx or 3xx) is the security failure. A refusal with a status other than 401/403 still
    keeps callers out, so it is a warning about the status code.
    """
    status = _status(exchange, "a request with a wrong key")
    given = "no Authorization header" if exchange.request.header("authorization") is None else "a wrong key"
    if status < 400:
        raise CheckFailed(
            f"HTTP {status} for a request with {given}: the endpoint serves callers who do not hold the key",
            exchange.body_excerpt(120),
        )
    if status >= 500:
        raise CheckFailed(
            f"HTTP {status} (a server error) for a request with {given}, expected 401 or 403",
            "Not served, so the endpoint is not open, but the server failed where it should refuse: a caller "
            f"with a bad key sees a crash. {exchange.body_excerpt(120)}",
            severity=Severity.WARNING,
        )
    if status not in (401, 403):
        raise CheckFailed(
            f"HTTP {status} refusing a request with {given}, expected 401 or 403",
            "The request was refused, but with a status that does not say why; OpenAI's clients and Vapi's logs "
            f"read 401 as a bad key. {exchange.body_excerpt(120)}",
            severity=Severity.WARNING,
        )


@check(Severity.WARNING, on=(Expect.TURN, Expect.MALFORMED, Expect.AUTH), needs_success=False)
def error_has_envelope(ctx: CheckContext, exchange: Exchange) -> None:
    """A 4xx answer carries OpenAI's error envelope `{"error": {"message", "type", ...}}`."""
    if exchange.status is None or not 400 <= exchange.status < 500:
        not_applicable(no_reply_reason(exchange) if exchange.status is None else f"HTTP {exchange.status}, not a 4xx")
    body = exchange.body_json
    errors = ["the body is not JSON"] if body is INVALID_JSON else schema_errors("error_envelope", body)
    if errors:
        raise CheckFailed(
            f"HTTP {exchange.status} without the OpenAI error envelope",
            f"{'; '.join(errors)}: {exchange.body_excerpt(200)}",
        )

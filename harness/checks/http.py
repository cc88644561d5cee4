"""Checks on how the endpoint refuses: malformed bodies, wrong keys, error envelopes."""

from __future__ import annotations

from harness.checks.base import CheckContext, CheckFailed, Expect, Severity, check, not_applicable
from harness.exchange import INVALID_JSON, Exchange, Outcome
from harness.protocol import schema_errors


def _status(exchange: Exchange, what: str) -> int:
    if exchange.status is None:
        if exchange.outcome is Outcome.CONNECT_ERROR:
            not_applicable()  # endpoint_reachable says it
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
    """With an API key configured, a wrong or missing key gets 401/403: otherwise the endpoint is open to anyone."""
    status = _status(exchange, "a request with a wrong key")
    if status not in (401, 403):
        given = "no Authorization header" if exchange.request.header("authorization") is None else "a wrong key"
        raise CheckFailed(
            f"HTTP {status} for a request with {given}, expected 401 or 403",
            "The endpoint accepts callers who do not hold the key. " + exchange.body_excerpt(120),
        )


@check(Severity.WARNING, on=(Expect.TURN, Expect.MALFORMED, Expect.AUTH), needs_success=False)
def error_has_envelope(ctx: CheckContext, exchange: Exchange) -> None:
    """A 4xx answer carries OpenAI's error envelope `{"error": {"message", "type", ...}}`."""
    if exchange.status is None or not 400 <= exchange.status < 500:
        not_applicable()
    body = exchange.body_json
    errors = ["the body is not JSON"] if body is INVALID_JSON else schema_errors("error_envelope", body)
    if errors:
        raise CheckFailed(
            f"HTTP {exchange.status} without the OpenAI error envelope",
            f"{'; '.join(errors)}: {exchange.body_excerpt(200)}",
        )

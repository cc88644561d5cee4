"""The mock's switches for what Vapi does not document: the OpenAI SDK's retries and the OAuth2 token cache."""

from __future__ import annotations

import argparse
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime

import pytest

from harness.cli.mock_vapi import OPTIONS, add_parser
from harness.cli.options import resolve
from mock_vapi.api.llm import NO_RETRIES, RetryPolicy, TokenSources, tool_ids
from mock_vapi.errors import ConfigError
from mock_vapi.exchange import Exchange, Outcome
from mock_vapi.request import CustomLLMModel, build_request

SDK = RetryPolicy(max_retries=2)


def exchange(status: int | None, outcome: Outcome = Outcome.COMPLETE, **headers: str) -> Exchange:
    request = build_request(CustomLLMModel(url="http://127.0.0.1:9/v1", model="m"), [])
    return Exchange(request, 0.0, outcome=outcome, status=status, headers=headers)


@pytest.mark.parametrize(
    ("status", "outcome", "headers", "retried"),
    [
        (408, Outcome.COMPLETE, {}, True),
        (409, Outcome.COMPLETE, {}, True),
        (429, Outcome.COMPLETE, {}, True),
        (500, Outcome.COMPLETE, {}, True),
        (503, Outcome.COMPLETE, {}, True),
        (400, Outcome.COMPLETE, {}, False),
        (401, Outcome.COMPLETE, {}, False),
        (200, Outcome.BROKEN, {}, False),  # a stream that broke after its headers is not sent again
        (None, Outcome.CONNECT_ERROR, {}, True),
        (None, Outcome.HEADERS_TIMEOUT, {}, True),
        (None, Outcome.DEADLINE, {}, False),
        (500, Outcome.COMPLETE, {"x-should-retry": "false"}, False),
        (400, Outcome.COMPLETE, {"x-should-retry": "true"}, True),
    ],
)
def test_what_the_sdk_retries(status: int | None, outcome: Outcome, headers: dict[str, str], retried: bool) -> None:
    assert SDK.should_retry(exchange(status, outcome, **headers)) is retried


def test_the_sdks_back_off_doubles_from_half_a_second_to_eight_with_jitter() -> None:
    assert [SDK.delay_s(n, {}, jitter=0.0) for n in range(6)] == [0.5, 1.0, 2.0, 4.0, 8.0, 8.0]
    assert SDK.delay_s(0, {}, jitter=1.0) == 0.375 and SDK.delay_s(1, {}, jitter=0.5) == 0.875


def test_retry_after_is_honoured_under_a_minute() -> None:
    assert SDK.delay_s(0, {"retry-after-ms": "250", "retry-after": "9"}, jitter=0.0) == 0.25
    assert SDK.delay_s(0, {"retry-after": "3"}, jitter=0.0) == 3.0
    assert SDK.delay_s(1, {"retry-after": "120"}, jitter=0.0) == 1.0  # too long: the SDK's own back-off
    assert SDK.delay_s(0, {"retry-after": "0"}, jitter=0.0) == 0.5
    soon = format_datetime(datetime.now(UTC) + timedelta(seconds=30), usegmt=True)
    assert 20 < SDK.delay_s(0, {"retry-after": soon}, jitter=0.0) <= 30
    assert SDK.delay_s(0, {"retry-after": "soon"}, jitter=0.0) == 0.5


def test_no_retries_by_default() -> None:
    assert NO_RETRIES.max_retries == 0


def test_a_credential_keeps_its_token_source_until_its_plan_changes() -> None:
    sources = TokenSources(client_auth="basic")
    plan = {"type": "oauth2", "url": "http://127.0.0.1:9/token", "clientId": "a", "clientSecret": "s"}
    first = sources.source("cred-1", plan)
    assert sources.source("cred-1", dict(plan)) is first and first.plan.client_auth == "basic"
    assert sources.source("cred-2", plan) is not first
    assert sources.source("cred-1", {**plan, "clientSecret": "rotated"}) is not first
    with pytest.raises(ValueError, match=r"authenticationPlan\.clientSecret"):
        sources.source("cred-3", {**plan, "clientSecret": ""})


def test_tools_by_id_and_by_ref_are_named_once_in_order() -> None:
    assert tool_ids({"toolIds": ["a", "b"], "toolRefs": [{"toolId": "a", "version": 2}, {"toolId": "c"}]}) == [
        "a",
        "b",
        "c",
    ]


def test_the_cli_switches_default_to_vapis_documented_behaviour() -> None:
    parser = argparse.ArgumentParser()
    add_parser(parser.add_subparsers())
    defaults = resolve(parser.parse_args(["mock-vapi"]), OPTIONS, "X_", environ={})
    assert defaults["llm_retries"] == 0 and defaults["oauth2_client_auth"] == "body"
    given = resolve(parser.parse_args(["mock-vapi", "--llm-retries", "2"]), OPTIONS, "X_",
                    environ={"X_OAUTH2_CLIENT_AUTH": "Basic"})  # fmt: skip
    assert given["llm_retries"] == 2 and given["oauth2_client_auth"] == "basic"
    with pytest.raises(ConfigError, match="--llm-retries: '11' is more retries"):
        resolve(parser.parse_args(["mock-vapi", "--llm-retries", "11"]), OPTIONS, "X_", environ={})

"""The one redaction rule every output uses: which names are secrets', and what `Redactor` hides."""

from __future__ import annotations

import logging

import pytest

from harness.protocol import REDACTED, Redactor, is_secret_header


@pytest.mark.parametrize(
    "name",
    ["Authorization", "x-api-key", "X-Vapi-Secret", "Cookie", "X-Api-Token", "apiKey", "client_secret",
     "accessToken", "OPENAI_API_KEY", "x-auth", "Proxy-Authorization", "password"],
)  # fmt: skip
def test_credential_names_are_secret(name: str) -> None:
    assert is_secret_header(name)


@pytest.mark.parametrize(
    "name", ["Content-Type", "max_tokens", "prompt_tokens", "keywords", "author", "X-Tenant", "model", "sessionId"]
)
def test_other_names_are_not(name: str) -> None:
    assert not is_secret_header(name)


def test_redactor_hides_known_values_and_secret_keys_everywhere() -> None:
    redactor = Redactor(["sk-live-1234567", None, "ab"])  # None and too-short values are ignored
    value = {
        "url": "http://h/v1?key=sk-live-1234567",
        "headers": {"X-Api-Token": "whatever", "X-Tenant": "acme"},
        "body": [{"apiKey": "plain", "max_tokens": 50, "note": "ab is short"}, ("sk-live-1234567",)],
        "clientSecret": None,  # nothing to hide
    }
    assert redactor.deep(value) == {
        "url": f"http://h/v1?key={REDACTED}",
        "headers": {"X-Api-Token": REDACTED, "X-Tenant": "acme"},
        "body": [{"apiKey": REDACTED, "max_tokens": 50, "note": "ab is short"}, [REDACTED]],
        "clientSecret": None,
    }
    assert redactor.headers([("authorization", "Bearer x"), ("x-trace", "sk-live-1234567")]) == {
        "authorization": REDACTED,
        "x-trace": REDACTED,
    }


def test_as_a_logging_filter_it_redacts_the_formatted_message() -> None:
    record = logging.LogRecord("t", logging.INFO, __file__, 1, "key %s sent", ("sk-live-1234567",), None)
    assert Redactor(["sk-live-1234567"]).filter(record)
    assert record.getMessage() == f"key {REDACTED} sent"


def test_a_secret_learnt_later_is_hidden_from_then_on() -> None:
    redactor = Redactor(["sk-live-1234567"])
    redactor.add("token-abcdef")
    redactor.add(None)
    assert redactor.text("a token-abcdef and sk-live-1234567") == f"a {REDACTED} and {REDACTED}"

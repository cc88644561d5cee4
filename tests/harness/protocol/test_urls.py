"""`harness.protocol.urls`: one join and one validation of base URLs, the same for Vapi's request and the proxy."""

from __future__ import annotations

import pytest

from harness.endpoint import validate_url
from harness.protocol import UNUSABLE, UrlProblemKind, base_url_problems, completions_url
from mock_vapi import CustomLLMModel, build_request, url_problems
from mock_vapi.errors import ConfigError
from reference_proxy.settings import ProxySettings

JOINS = [
    ("http://h/v1", "http://h/v1/chat/completions"),
    ("http://h/v1/", "http://h/v1/chat/completions"),
    ("http://h/v1?x=1", "http://h/v1?x=1/chat/completions"),  # the SDK's string join: the path lands in the query
    ("http://h:8000", "http://h:8000/chat/completions"),
    ("https://h/", "https://h/chat/completions"),
    ("http://h/v1//", "http://h/v1//chat/completions"),  # one slash normalised, not more
    ("http://h/v1/chat/completions", "http://h/v1/chat/completions/chat/completions"),  # no de-duplication
    ("http://[::1]:8000/v1", "http://[::1]:8000/v1/chat/completions"),
]


@pytest.mark.parametrize(("base", "joined"), JOINS, ids=[base for base, _ in JOINS])
def test_the_proxy_and_the_request_builder_join_identically(base: str, joined: str) -> None:
    model = CustomLLMModel.from_vapi({"provider": "custom-llm", "url": base, "model": "m"})
    request = build_request(model, [{"role": "user", "content": "Hi"}])
    assert completions_url(base) == joined
    assert request.url == joined
    assert ProxySettings(upstream_url=base).completions_url == joined


@pytest.mark.parametrize(
    ("url", "kinds"),
    [
        ("http://127.0.0.1:8000/v1", []),
        ("https://llm.example.com/secret-route/v1/", []),
        ("http://[::1]:8000/v1", []),
        ("http://[::1", [UrlProblemKind.INVALID]),
        ("http://h:port/v1", [UrlProblemKind.INVALID]),
        ("ftp://h/v1", [UrlProblemKind.NOT_HTTP]),
        ("http:///v1", [UrlProblemKind.NOT_HTTP]),
        ("127.0.0.1:8000/v1", [UrlProblemKind.NOT_HTTP]),
        ("http://u:pw-secret@h/v1", [UrlProblemKind.CREDENTIALS]),
        ("http://h/v1/chat/completions/", [UrlProblemKind.ENDPOINT_PATH]),
        ("http://h/v1?key=k", [UrlProblemKind.QUERY]),
        ("http://h/v1#top", [UrlProblemKind.QUERY]),
        ("ftp://h/chat/completions?x=1", [UrlProblemKind.NOT_HTTP, UrlProblemKind.ENDPOINT_PATH,
                                          UrlProblemKind.QUERY]),
    ],
)  # fmt: skip
def test_problems_are_found_once_each(url: str, kinds: list[UrlProblemKind]) -> None:
    assert [problem.kind for problem in base_url_problems(url)] == kinds


def test_a_password_is_never_quoted() -> None:
    problems = base_url_problems("ftp://user:pw-secret@h/v1/chat/completions")
    assert len(problems) == 3
    assert all("pw-secret" not in problem.text and "[redacted]" in problem.text for problem in problems)


def test_the_check_cli_and_the_request_builder_read_the_same_problems() -> None:
    url = "http://h/v1/chat/completions?x=1"
    assert url_problems(url) == [f"model.url {problem}" for problem in base_url_problems(url)]
    validate_url(url)  # usable, if wrong: a finding of model_url_is_base_url, not a refusal
    for bad in ("ftp://h/v1", "http://[::1", "http://u:p@h/v1"):
        (problem,) = [p for p in base_url_problems(bad) if p.kind in UNUSABLE]
        with pytest.raises(ConfigError) as caught:
            validate_url(bad, "--vapi-url")
        assert str(caught.value) == f"--vapi-url: {problem}"

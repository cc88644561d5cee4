"""A base URL and what becomes of it: how `/chat/completions` is joined to it, and what is wrong with it.

The join is the OpenAI SDK's (`buildURL`), which Vapi's client uses: the base is kept as written, one slash
between it and the path, no de-duplication, and a query string stays where it is, so `/chat/completions` lands
inside it (`http://h/v1?x=1` calls `http://h/v1?x=1/chat/completions`). The request builder, the checks, the
CLIs and the proxy all join and validate here.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from urllib.parse import urlsplit

from harness.protocol.secrets import Redactor

__all__ = [
    "CHAT_COMPLETIONS", "UNUSABLE", "UrlProblem", "UrlProblemKind", "base_url_problems", "completions_url",
    "is_http_url",
]  # fmt: skip

CHAT_COMPLETIONS = "/chat/completions"


class UrlProblemKind(StrEnum):
    """What is wrong with a base URL."""

    INVALID = "invalid"  # does not parse (a bad port, an unclosed IPv6 bracket)
    NOT_HTTP = "not_http"  # not http(s), or no host
    CREDENTIALS = "credentials"  # user:password@ (Vapi's client, fetch, refuses them)
    ENDPOINT_PATH = "endpoint_path"  # already ends in /chat/completions, which is appended again
    QUERY = "query"  # a query or fragment, which /chat/completions is appended after


UNUSABLE = frozenset({UrlProblemKind.INVALID, UrlProblemKind.NOT_HTTP, UrlProblemKind.CREDENTIALS})
"""Kinds that mean no request can be sent to the URL as Vapi sends it; the others send it somewhere wrong."""


@dataclass(frozen=True)
class UrlProblem:
    """One problem: its kind and a sentence that quotes the URL (its password redacted)."""

    kind: UrlProblemKind
    text: str

    def __str__(self) -> str:
        return self.text


def completions_url(base_url: str) -> str:
    """Join the way the OpenAI SDK joins `baseURL` and `/chat/completions` (no de-duplication)."""
    if base_url.endswith("/"):
        return base_url + CHAT_COMPLETIONS[1:]
    return base_url + CHAT_COMPLETIONS


def base_url_problems(base_url: str) -> list[UrlProblem]:
    """Every problem with `base_url` as the base URL of a chat-completions API; [] when there is none."""
    try:
        parts = urlsplit(base_url)
        parts.port  # noqa: B018 (parsing the port is the check)
    except ValueError as exc:
        return [UrlProblem(UrlProblemKind.INVALID, f"{base_url!r} is not a valid URL: {exc}")]
    shown = Redactor([parts.password]).text(base_url) if parts.password else base_url
    problems = []
    if parts.scheme not in ("http", "https") or not parts.hostname:
        problems.append(
            UrlProblem(UrlProblemKind.NOT_HTTP, f"{shown!r} is not an http(s) URL (e.g. http://127.0.0.1:8000/v1)")
        )
    if parts.username or parts.password:
        problems.append(
            UrlProblem(
                UrlProblemKind.CREDENTIALS,
                f"{shown!r} holds credentials in the URL, which Vapi's client does not send (fetch refuses them); "
                "use an API key",
            )
        )
    if parts.path.rstrip("/").endswith(CHAT_COMPLETIONS):
        problems.append(
            UrlProblem(
                UrlProblemKind.ENDPOINT_PATH,
                f"{shown!r} already ends in /chat/completions; it is appended again, making "
                f"{completions_url(shown)!r}. Set the URL to the base (e.g. .../v1).",
            )
        )
    if parts.query or parts.fragment:
        problems.append(
            UrlProblem(
                UrlProblemKind.QUERY,
                f"{shown!r} has a query or fragment; /chat/completions is appended after it, as the OpenAI SDK "
                "does. Put a route secret in the path instead.",
            )
        )
    return problems


def is_http_url(url: object) -> bool:
    """Whether `url` is an http(s) URL with a host: what Vapi's API means by "must be a URL address"."""
    if not isinstance(url, str):
        return False
    kinds = {problem.kind for problem in base_url_problems(url)}
    return not kinds & {UrlProblemKind.INVALID, UrlProblemKind.NOT_HTTP}

"""Keeping secrets out of every output: which header names and JSON keys carry credentials, and `Redactor`,
which every report, log line and API response of ours goes through.

A name is a secret's when it is a known credential header (`Authorization`, `X-Vapi-Secret`, cookies, ...)
or one of its words (split at `-`, `_`, `.` and camelCase) names a credential: `X-Api-Token`, `apiKey`,
`client_secret`, `accessToken`. Counts are not secrets: `max_tokens` and `prompt_tokens` stay readable.
Known secret values (the API key a run was given, the upstream key) are replaced wherever they appear.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterable
from typing import Any

__all__ = ["REDACTED", "SECRET_HEADERS", "Redactor", "is_secret_header", "redact_secret_keys"]

REDACTED = "[redacted]"
SECRET_HEADERS = frozenset({"authorization", "proxy-authorization", "api-key", "x-api-key", "x-vapi-secret", "cookie",
                            "set-cookie"})  # fmt: skip
_SECRET_WORDS = frozenset({"auth", "authorization", "authentication", "key", "apikey", "token", "secret",
                           "password", "passwd", "passphrase", "signature", "cookie", "credential", "credentials",
                           "bearer"})  # fmt: skip
_CAMEL = re.compile(r"(?<=[a-z0-9])(?=[A-Z])")
_SEPARATORS = re.compile(r"[^A-Za-z0-9]+")


def is_secret_header(name: str) -> bool:
    """True for headers (or JSON keys) whose values are credentials: the known ones and names that look like one."""
    if name.lower() in SECRET_HEADERS:
        return True
    return any(word.lower() in _SECRET_WORDS for word in _SEPARATORS.split(_CAMEL.sub("_", name)) if word)


class Redactor(logging.Filter):
    """Replaces known secret values anywhere, and the values of secret-looking headers and keys wholesale.

    Also a logging filter: the formatted message of each record is redacted in place.
    """

    def __init__(self, secrets: Iterable[str | None] = ()) -> None:
        super().__init__()
        # Longest first, so a key that contains another is replaced whole; very short ones would hit everywhere.
        self.secrets = sorted({s for s in secrets if s and len(s) >= 4}, key=len, reverse=True)

    def add(self, secret: str | None) -> None:
        """Learn one more secret value (a token fetched during the run), hidden from then on."""
        self.secrets = Redactor([*self.secrets, secret]).secrets

    def text(self, value: str) -> str:
        """`value` with every known secret replaced."""
        for secret in self.secrets:
            value = value.replace(secret, REDACTED)
        return value

    def headers(self, headers: Iterable[tuple[str, str]]) -> dict[str, str]:
        """Headers as a dict, secret ones redacted."""
        return {k: REDACTED if is_secret_header(k) else self.text(v) for k, v in headers}

    def deep(self, value: Any) -> Any:
        """A copy of a JSON-like structure: secret-looking keys' values replaced, known secrets in every string."""
        if isinstance(value, str):
            return self.text(value)
        if isinstance(value, dict):
            return {
                self.text(str(k)): REDACTED if is_secret_header(str(k)) and v not in (None, "") else self.deep(v)
                for k, v in value.items()
            }
        if isinstance(value, list | tuple):
            return [self.deep(v) for v in value]
        return value

    def filter(self, record: logging.LogRecord) -> bool:
        """Logging filter: redact the formatted message in place."""
        if self.secrets:
            record.msg = self.text(record.getMessage())
            record.args = None
        return True


def redact_secret_keys(value: Any) -> Any:
    """A copy of a JSON-like structure with the values of credential-looking keys replaced."""
    return Redactor().deep(value)

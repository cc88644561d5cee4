"""Keep secrets out of reports and logs: API keys and `Authorization` values never leave memory."""

from __future__ import annotations

import logging
from collections.abc import Iterable
from typing import Any

from harness.protocol.secrets import REDACTED, SECRET_HEADERS, is_secret_header

__all__ = ["REDACTED", "SECRET_HEADERS", "Redactor", "is_secret_header"]


class Redactor(logging.Filter):
    """Replaces known secret values anywhere in a structure, and secret headers' values wholesale."""

    def __init__(self, secrets: Iterable[str | None] = ()) -> None:
        super().__init__()
        # Longest first, so a key that contains another is replaced whole.
        self.secrets = sorted({s for s in secrets if s and len(s) >= 4}, key=len, reverse=True)

    def text(self, value: str) -> str:
        """`value` with every secret replaced."""
        for secret in self.secrets:
            value = value.replace(secret, REDACTED)
        return value

    def headers(self, headers: Iterable[tuple[str, str]]) -> dict[str, str]:
        """Headers as a dict, secret ones redacted."""
        return {k: REDACTED if is_secret_header(k) else self.text(v) for k, v in headers}

    def deep(self, value: Any) -> Any:
        """A copy of a JSON-like structure with secrets replaced in every string."""
        if isinstance(value, str):
            return self.text(value)
        if isinstance(value, dict):
            return {self.text(str(k)): self.deep(v) for k, v in value.items()}
        if isinstance(value, list | tuple):
            return [self.deep(v) for v in value]
        return value

    def filter(self, record: logging.LogRecord) -> bool:
        """Logging filter: redact the formatted message in place."""
        if self.secrets:
            record.msg = self.text(record.getMessage())
            record.args = None
        return True

"""Which header names and JSON keys carry credentials, so every output can leave their values out."""

from __future__ import annotations

from typing import Any

__all__ = ["REDACTED", "SECRET_HEADERS", "is_secret_header", "redact_secret_keys"]

REDACTED = "[redacted]"
SECRET_HEADERS = frozenset({"authorization", "proxy-authorization", "api-key", "x-api-key", "x-vapi-secret", "cookie"})
_SECRET_WORDS = ("auth", "key", "token", "secret", "password", "signature", "session", "cookie")


def is_secret_header(name: str) -> bool:
    """True for headers (or JSON keys) whose values are credentials: the known ones and names that look like one."""
    lowered = name.lower()
    return lowered in SECRET_HEADERS or any(word in lowered for word in _SECRET_WORDS)


def redact_secret_keys(value: Any) -> Any:
    """A copy of a JSON-like structure with the values of credential-looking keys replaced."""
    if isinstance(value, dict):
        return {k: REDACTED if is_secret_header(str(k)) else redact_secret_keys(v) for k, v in value.items()}
    if isinstance(value, list):
        return [redact_secret_keys(v) for v in value]
    return value

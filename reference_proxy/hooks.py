"""Hooks: user code that rewrites a request before it goes upstream, with the Vapi call context at hand."""

from __future__ import annotations

import importlib
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

__all__ = ["Hook", "HookError", "HookLoadError", "VapiContext", "load_hook"]


@dataclass(frozen=True)
class VapiContext:
    """What Vapi sent besides the OpenAI fields: the call, the caller and the assistant's metadata."""

    call: Mapping[str, Any] | None = None
    phone_number: Mapping[str, Any] | None = None
    customer: Mapping[str, Any] | None = None
    metadata: Mapping[str, Any] = field(default_factory=dict)

    @property
    def call_id(self) -> str | None:
        """`call.id`, the key that ties log lines to Vapi's call."""
        value = self.call.get("id") if self.call else None
        return str(value) if value is not None else None


class HookError(Exception):
    """Raised by a hook to refuse a request; becomes an OpenAI error envelope with `status`."""

    def __init__(self, message: str, status: int = 400, code: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.status = status
        self.code = code


class HookLoadError(Exception):
    """`--hooks module:attr` could not be loaded; the message says why."""


# A hook receives the body to forward (OpenAI fields only) and returns the body to send upstream.
Hook = Callable[[dict[str, Any], VapiContext], Awaitable[dict[str, Any]]]


def load_hook(spec: str) -> Hook:
    """Load `module:attr` (an async callable) for `--hooks`."""
    module_name, sep, attr = spec.partition(":")
    if not sep or not module_name or not attr:
        raise HookLoadError(f"--hooks {spec!r}: expected MODULE:ATTRIBUTE, e.g. my_hooks:before_upstream")
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        raise HookLoadError(f"--hooks {spec!r}: cannot import {module_name!r}: {exc}") from exc
    hook = getattr(module, attr, None)
    if hook is None or not callable(hook):
        raise HookLoadError(f"--hooks {spec!r}: {module_name} has no callable {attr!r}")
    return hook  # type: ignore[no-any-return]

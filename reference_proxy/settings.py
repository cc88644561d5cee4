"""The proxy's settings: where the upstream is, how long to wait for it, and who may call."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from harness.protocol import completions_url

__all__ = ["ProxySettings"]


@dataclass(frozen=True)
class ProxySettings:
    """Everything the app needs; the CLI reads keys from the environment, never from flag values."""

    upstream_url: str
    upstream_api_key: str | None = None
    api_key: str | None = None
    connect_timeout_s: float = 5.0
    first_byte_timeout_s: float = 20.0
    idle_timeout_s: float = 20.0
    force_include_usage: bool = False
    max_connections: int = 1000
    record_path: Path | None = None

    @property
    def completions_url(self) -> str:
        """The upstream's chat-completions URL, joined as the OpenAI SDK (and so Vapi) joins it."""
        return completions_url(self.upstream_url)

"""The endpoint under test: a user's URL, checked the way Vapi's client would take it, or the built-in one."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from importlib.metadata import entry_points

from harness.fake_llm import FakeLLMConfig, create_app
from harness.protocol import UNUSABLE, base_url_problems
from harness.servers import serve_in_thread
from mock_vapi.errors import ConfigError

__all__ = ["builtin_endpoint", "validate_url"]


def validate_url(url: str, option: str = "--url") -> None:
    """Raise `ConfigError` naming `option` when `url` is not what a Vapi assistant's `model.url` can hold.

    Only the problems that stop every request (`UNUSABLE`); the others are findings of `model_url_is_base_url`.
    """
    unusable = [problem for problem in base_url_problems(url) if problem.kind in UNUSABLE]
    if unusable:
        raise ConfigError(f"{option}: {unusable[0]}")


@contextmanager
def builtin_endpoint(api_key: str | None = None) -> Iterator[str]:
    """Serve the built-in endpoint on loopback for the block; yields its base URL (`.../v1`).

    That is the reference proxy in front of the fake LLM when the proxy is installed (it registers the
    `vapi_harness.builtin_endpoint` entry point), else the fake LLM alone.
    """
    front = next(iter(entry_points(group="vapi_harness.builtin_endpoint")), None)
    if front is None:
        with serve_in_thread(create_app(FakeLLMConfig(api_key=api_key))) as server:
            yield f"{server.url}/v1"
        return
    with serve_in_thread(create_app(FakeLLMConfig())) as upstream:
        with serve_in_thread(front.load()(f"{upstream.url}/v1", api_key)) as server:
            yield f"{server.url}/v1"

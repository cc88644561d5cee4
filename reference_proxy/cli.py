"""`vapi-harness proxy`: serve the reference proxy. Registered through the `vapi_harness.commands` entry point.

Every option also reads `VAPI_HARNESS_PROXY_<OPTION>`; the upstream key only ever comes from the environment.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import sys
from pathlib import Path
from typing import Any

from aiohttp import web

from harness.protocol import ListenError, UrlProblemKind, base_url_problems, host_port, listen_socket
from reference_proxy.app import create_app
from reference_proxy.hooks import HookLoadError, load_hook
from reference_proxy.logs import log_json_lines
from reference_proxy.settings import ProxySettings

__all__ = ["add_parser", "run"]

ENV_PREFIX = "VAPI_HARNESS_PROXY_"


class ProxyConfigError(Exception):
    """A bad option value; the message names the option."""


def _env(name: str, default: str | None = None) -> str | None:
    return os.environ.get(ENV_PREFIX + name.upper().replace("-", "_"), default)


def add_parser(subparsers: Any) -> None:
    """Register the `proxy` subcommand."""
    parser = subparsers.add_parser(
        "proxy",
        help="serve the reference custom-LLM proxy in front of an OpenAI-compatible API",
        description="A custom-LLM server for Vapi that forwards to any OpenAI-compatible upstream, "
        "strips Vapi's extra fields, and streams without buffering. "
        f"Every option also reads {ENV_PREFIX}<OPTION>.",
    )
    parser.add_argument("--upstream-url", default=_env("upstream-url"), help="upstream base URL, e.g. .../v1")
    parser.add_argument(
        "--upstream-api-key-env",
        default=_env("upstream-api-key-env", "OPENAI_API_KEY"),
        metavar="NAME",
        help="environment variable holding the upstream key (default: OPENAI_API_KEY)",
    )
    parser.add_argument(
        "--api-key",
        default=_env("api-key"),
        metavar="KEY",
        help=f"the key Vapi must send as Bearer (prefer {ENV_PREFIX}API_KEY: a flag value lands in shell history)",
    )
    parser.add_argument("--host", default=_env("host", "127.0.0.1"))
    parser.add_argument("--port", default=_env("port", "8080"))
    parser.add_argument("--hooks", default=_env("hooks"), metavar="MODULE:ATTR", help="an async hook, see docs")
    parser.add_argument(
        "--record", default=_env("record"), metavar="PATH.jsonl", help="append each exchange here, for check --replay"
    )
    parser.add_argument("--connect-timeout-s", default=_env("connect-timeout-s", "5"))
    parser.add_argument("--first-byte-timeout-s", default=_env("first-byte-timeout-s", "20"))
    parser.add_argument("--idle-timeout-s", default=_env("idle-timeout-s", "20"))
    parser.add_argument(
        "--force-include-usage",
        action="store_true",
        default=(_env("force-include-usage", "") or "").lower() in ("1", "true", "yes", "on"),
        help="ask the upstream for a usage chunk on every stream",
    )
    parser.set_defaults(handler=run)


def _number(args: argparse.Namespace, name: str) -> float:
    text = getattr(args, name)
    try:
        value = float(text)
    except ValueError:
        raise ProxyConfigError(f"--{name.replace('_', '-')}: {text!r} is not a number") from None
    if value <= 0:
        raise ProxyConfigError(f"--{name.replace('_', '-')}: {text!r} must be greater than 0")
    return value


def settings_from(args: argparse.Namespace) -> ProxySettings:
    """Settings from parsed arguments and the environment."""
    if not args.upstream_url:
        raise ProxyConfigError(f"--upstream-url is required (or {ENV_PREFIX}UPSTREAM_URL)")
    # Credentials in the URL are sent (as basic auth) by the upstream client; anything else wrong stops here.
    problems = [p for p in base_url_problems(args.upstream_url) if p.kind is not UrlProblemKind.CREDENTIALS]
    if problems:
        raise ProxyConfigError(f"--upstream-url: {problems[0]}")
    return ProxySettings(
        upstream_url=args.upstream_url,
        upstream_api_key=os.environ.get(args.upstream_api_key_env) or None,
        api_key=args.api_key or None,
        connect_timeout_s=_number(args, "connect_timeout_s"),
        first_byte_timeout_s=_number(args, "first_byte_timeout_s"),
        idle_timeout_s=_number(args, "idle_timeout_s"),
        force_include_usage=args.force_include_usage,
        record_path=Path(args.record) if args.record else None,
    )


def run(args: argparse.Namespace) -> int:
    """Serve until interrupted; exit 2 with a message for bad options."""
    try:
        settings = settings_from(args)
        hook = load_hook(args.hooks) if args.hooks else None
        port = int(args.port)
    except (ProxyConfigError, HookLoadError) as exc:
        sys.stderr.write(f"vapi-harness proxy: error: {exc}\n")
        return 2
    except ValueError:
        sys.stderr.write(f"vapi-harness proxy: error: --port: {args.port!r} is not a port number\n")
        return 2
    try:  # bound before anything says where the proxy listens
        sock = listen_socket(args.host, port)
    except ListenError as exc:
        sys.stderr.write(f"vapi-harness proxy: error: {exc}\n")
        return 2
    log_json_lines(sys.stderr, secrets=[settings.upstream_api_key, settings.api_key])
    logging.getLogger("reference_proxy").info(
        "listening", extra={"url": f"http://{host_port(args.host, sock.getsockname()[1])}"}
    )
    # SIGTERM and Ctrl-C stop accepting, let streams in flight finish (up to 30 s), then exit.
    web.run_app(
        create_app(settings, hook),
        sock=sock,
        shutdown_timeout=30,
        handler_cancellation=True,
        access_log=None,
        print=None,
        loop=_event_loop(),
    )
    return 0


def _event_loop() -> asyncio.AbstractEventLoop:
    try:
        import uvloop
    except ImportError:  # Windows, or installed without it
        return asyncio.new_event_loop()
    return uvloop.new_event_loop()

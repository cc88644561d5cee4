"""`vapi-harness fake-llm`: serve the deterministic OpenAI-compatible fake, optionally with faults."""

from __future__ import annotations

import argparse
import gc
import json
import logging
import sys
from typing import Any

from harness.cli.options import Option, add_options, number, port, resolve
from harness.fake_llm import DEFAULT_REPLY, FakeLLMConfig, Fault, Quirk, create_app
from harness.protocol import ListenError, listen_socket
from harness.servers import base_url, serve_on
from mock_vapi.errors import ConfigError

__all__ = ["add_parser", "run"]

ENV_PREFIX = "VAPI_HARNESS_FAKE_LLM_"


def _arguments(text: str) -> dict[str, Any]:
    try:
        value = json.loads(text)
    except ValueError as exc:
        raise ValueError(f"not JSON: {exc}") from None
    if not isinstance(value, dict):
        raise ValueError("must be a JSON object")
    return value


OPTIONS = [
    Option("--host", "Interface to bind", default="127.0.0.1"),
    Option("--port", "Port to listen on (0 picks a free one)", default=8000, type=port),
    Option("--ttft-ms", "Delay before the first chunk", default=20.0, type=number),
    Option("--chunk-delay-ms", "Delay between chunks", default=10.0, type=number),
    Option("--reply", "Reply text, streamed word by word", default=DEFAULT_REPLY, metavar="TEXT"),
    Option(
        "--tool-mode",
        "auto: after a user message, call the first tool it mentions (a word of the name; goodbye: endCall)",
        default="auto",
        choices=["auto", "always", "never"],
    ),
    Option(
        "--tool-arguments",
        "Arguments of tool calls, as a JSON object (default: made from the schema)",
        type=_arguments,
        metavar="JSON",
    ),
    Option(
        "--fault",
        "Break one rule; repeatable (see --list-faults)",
        type=Fault.parse,
        repeatable=True,
        metavar="NAME",
    ),
    Option(
        "--quirk",
        "Unusual but correct framing; repeatable (see --list-faults)",
        type=Quirk.parse,
        repeatable=True,
        metavar="NAME",
    ),
    Option("--api-key", "Require 'Authorization: Bearer KEY'", metavar="KEY"),
    Option("--model", "model name in replies (default: echo the request's)", metavar="NAME"),
]


def add_parser(subparsers: Any) -> None:
    """Register the `fake-llm` subcommand."""
    parser = subparsers.add_parser(
        "fake-llm",
        help="serve a deterministic OpenAI-compatible fake LLM",
        description="A deterministic OpenAI-compatible server on loopback, with injectable faults. "
        "It is check's built-in endpoint and the upstream double in tests.",
    )
    add_options(parser, OPTIONS, ENV_PREFIX)
    parser.add_argument("--list-faults", action="store_true", help="list faults and quirks, then exit")
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    """Serve until interrupted."""
    if args.list_faults:
        for fault in Fault:
            sys.stdout.write(f"fault  {fault.value:<22} {fault.description}\n")
        for quirk in Quirk:
            sys.stdout.write(f"quirk  {quirk.value:<22} {quirk.description}\n")
        return 0
    values = resolve(args, OPTIONS, ENV_PREFIX)
    if values["host"] not in ("127.0.0.1", "localhost", "::1"):
        logging.getLogger(__name__).warning("Binding %s: the fake LLM is meant for loopback", values["host"])
    config = FakeLLMConfig(
        ttft_ms=values["ttft_ms"],
        chunk_delay_ms=values["chunk_delay_ms"],
        reply=values["reply"],
        tool_mode=values["tool_mode"],
        tool_arguments=values["tool_arguments"],
        faults=frozenset(values["fault"]),
        quirks=frozenset(values["quirk"]),
        api_key=values["api_key"],
        model=values["model"],
    )
    if not config.reply.strip():
        raise ConfigError("--reply: must not be empty")
    host = values["host"]
    try:
        sock = listen_socket(host, values["port"])
    except ListenError as exc:
        sys.stderr.write(f"vapi-harness fake-llm: error: {exc}\n")
        return 2
    sys.stderr.write(f"fake LLM: base URL {base_url(host, sock.getsockname()[1])}/v1\n")
    # Modules and the app live as long as the server: out of the collector's sight, its full collections stay
    # short, so the chunks keep their injected timing under load.
    gc.freeze()
    serve_on(sock, create_app(config), log_level="info")
    return 0

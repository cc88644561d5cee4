"""`vapi-harness mock-vapi`: serve the mock Vapi API (`mock_vapi.api`) on a local port.

Every option also reads `VAPI_HARNESS_MOCK_VAPI_<OPTION>`.
"""

from __future__ import annotations

import argparse
import os
import secrets
import sqlite3
import sys
from pathlib import Path
from typing import Any

from harness.cli.options import Option, add_options, number, port, resolve
from harness.protocol import ListenError, base_url_problems, listen_socket
from harness.servers import base_url, serve_on
from mock_vapi.api.app import create_app
from mock_vapi.api.llm import DEFAULT_PROVIDER_URLS, RetryPolicy, TokenSources
from mock_vapi.api.store import Store
from mock_vapi.errors import ConfigError

__all__ = ["add_parser", "default_db", "run"]

ENV_PREFIX = "VAPI_HARNESS_MOCK_VAPI_"


def default_db() -> Path:
    """Where the state lives by default: the user's data directory (XDG on Linux)."""
    if sys.platform == "win32":
        root = Path(os.environ.get("LOCALAPPDATA") or Path.home() / "AppData" / "Local")
    elif sys.platform == "darwin":
        root = Path.home() / "Library" / "Application Support"
    else:
        root = Path(os.environ.get("XDG_DATA_HOME") or Path.home() / ".local" / "share")
    return root / "vapi-harness" / "mock-vapi.sqlite3"


def _provider_url(text: str) -> tuple[str, str]:
    name, sep, url = text.partition("=")
    if not sep or name not in DEFAULT_PROVIDER_URLS:
        raise ValueError(f"{text!r} is not PROVIDER=URL with PROVIDER one of {', '.join(DEFAULT_PROVIDER_URLS)}")
    problems = base_url_problems(url)  # the mock joins /chat/completions to it as Vapi does
    if problems:
        raise ValueError(f"{name}: {problems[0]}")
    return name, url


def _retries(text: str) -> int:
    value = int(number(text, whole=True))
    if value > 10:
        raise ValueError(f"{text!r} is more retries than the OpenAI SDK is ever set to (0 to 10; its default is 2)")
    return value


OPTIONS = [
    Option("--host", "Interface to bind", default="127.0.0.1"),
    Option("--port", "Port to listen on (0 picks a free one)", default=8787, type=port),
    Option("--db", "SQLite file for the state (':memory:' keeps nothing)", metavar="PATH"),
    Option(
        "--api-key",
        "The private key clients must send as Bearer (default: generated once, kept in the db)",
        metavar="KEY",
    ),
    Option(
        "--provider-url",
        "Base URL of a provider's API for provider models, e.g. openai=http://127.0.0.1:8000/v1; repeatable",
        type=_provider_url,
        repeatable=True,
        metavar="PROVIDER=URL",
    ),
    Option(
        "--llm-retries",
        "Retries of a model request that fails with 408/409/429/5xx or no connection, with the OpenAI SDK's "
        "back-off (0: the first failure ends the chat or call; the SDK's own default is 2)",
        default=0,
        type=_retries,
        metavar="N",
    ),
    Option(
        "--oauth2-client-auth",
        "How an OAuth2 credential's client secret is sent to its token URL: in the form body or as HTTP basic auth",
        default="body",
        choices=("body", "basic"),
    ),
]


def add_parser(subparsers: Any) -> None:
    """Register the `mock-vapi` subcommand."""
    parser = subparsers.add_parser(
        "mock-vapi",
        help="serve a local Vapi API (credentials, assistants, chats, simulated calls) on SQLite",
        description="The slice of Vapi's REST API that configures a custom LLM and exercises it, on loopback. "
        "Vapi's SDKs work against it by base URL. "
        f"Every option also reads {ENV_PREFIX}<OPTION>.",
    )
    add_options(parser, OPTIONS, ENV_PREFIX)
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    """Serve until interrupted; exit 2 with a message for bad options."""
    try:
        values = resolve(args, OPTIONS, ENV_PREFIX)
    except ConfigError as exc:
        sys.stderr.write(f"vapi-harness mock-vapi: error: {exc}\n")
        return 2
    db = values["db"] or str(default_db())
    host = values["host"]
    try:  # bound now, and kept: nothing can take the port between this check and serving
        sock = listen_socket(host, values["port"])
    except ListenError as exc:
        sys.stderr.write(f"vapi-harness mock-vapi: error: {exc}\n")
        return 2
    try:
        store = Store(db)
    except (OSError, sqlite3.Error) as exc:
        sock.close()
        sys.stderr.write(f"vapi-harness mock-vapi: error: --db {db}: {exc}\n")
        return 2
    generated = values["api_key"] is None
    api_key = values["api_key"] or store.setting("api_key", lambda: f"mock-{secrets.token_hex(16)}")
    where = base_url(host, sock.getsockname()[1])
    sys.stderr.write(f"mock Vapi API: {where} (state in {db})\n")
    if generated:  # a key the user chose is not echoed
        sys.stderr.write(f"API key: {api_key}  (send it as 'Authorization: Bearer <key>')\n")
    app = create_app(
        store,
        api_key,
        dict(values["provider_url"]),
        tokens=TokenSources(client_auth=values["oauth2_client_auth"]),
        retries=RetryPolicy(max_retries=values["llm_retries"]),
    )
    try:
        serve_on(sock, app)
    finally:
        store.close()
    return 0

"""`vapi-harness mock-vapi`: serve the mock Vapi API. Registered through the `vapi_harness.commands` entry point.

Every option also reads `VAPI_HARNESS_MOCK_VAPI_<OPTION>`.
"""

from __future__ import annotations

import argparse
import os
import secrets
import socket
import sqlite3
import sys
from pathlib import Path
from typing import Any

import uvicorn

from harness.cli.options import Option, add_options, port, resolve
from harness.servers import base_url, free_port
from mock_vapi.api.app import create_app
from mock_vapi.api.llm import DEFAULT_PROVIDER_URLS
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
    if not sep or name not in DEFAULT_PROVIDER_URLS or not url.startswith(("http://", "https://")):
        raise ValueError(f"{text!r} is not PROVIDER=URL with PROVIDER one of {', '.join(DEFAULT_PROVIDER_URLS)}")
    return name, url


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
    listen_port = values["port"] or free_port(host)
    try:  # a clear message now, rather than uvicorn's exit once it fails to bind
        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        with socket.socket(family, socket.SOCK_STREAM) as probe:
            probe.bind((host, listen_port))
    except OSError as exc:
        sys.stderr.write(f"vapi-harness mock-vapi: error: cannot listen on {host}:{listen_port}: {exc.strerror}\n")
        return 2
    try:
        store = Store(db)
    except (OSError, sqlite3.Error) as exc:
        sys.stderr.write(f"vapi-harness mock-vapi: error: --db {db}: {exc}\n")
        return 2
    generated = values["api_key"] is None
    api_key = values["api_key"] or store.setting("api_key", lambda: f"mock-{secrets.token_hex(16)}")
    where = base_url(host, listen_port)
    sys.stderr.write(f"mock Vapi API: {where} (state in {db})\n")
    if generated:  # a key the user chose is not echoed
        sys.stderr.write(f"API key: {api_key}  (send it as 'Authorization: Bearer <key>')\n")
    app = create_app(store, api_key, dict(values["provider_url"]))
    try:
        uvicorn.run(app, host=host, port=listen_port, log_level="warning", access_log=False)
    finally:
        store.close()
    return 0

"""The mock Vapi's state in one SQLite file: resources as JSON documents, credential keys apart, sent requests.

One connection, serialised by a lock: the mock serves one developer's scripts and tests, and SQLite's own
locking keeps a second process on the same file safe. `:memory:` keeps everything in the process.
"""

from __future__ import annotations

import json
import sqlite3
import threading
import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

__all__ = ["KINDS", "Store", "now_iso"]

KINDS = ("credential", "assistant", "tool", "chat", "call")
_SCHEMA = """
CREATE TABLE IF NOT EXISTS resources (
    kind TEXT NOT NULL,
    id TEXT NOT NULL PRIMARY KEY,
    created_at TEXT NOT NULL,
    data TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS resources_kind ON resources (kind, created_at);
CREATE TABLE IF NOT EXISTS credential_keys (id TEXT PRIMARY KEY, api_key TEXT NOT NULL, data TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS sent_requests (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    data TEXT NOT NULL
);
"""
_SENT_LIMIT = 1000  # requests kept for /debug/requests


def now_iso() -> str:
    """The current time as Vapi writes it: ISO 8601, milliseconds, `Z`."""
    return datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


class Store:
    """Resources by kind and id; every write commits at once, so a restart loses nothing."""

    def __init__(self, path: str | Path, org_id: str | None = None) -> None:
        self.path = str(path)
        if self.path != ":memory:":
            Path(self.path).parent.mkdir(parents=True, exist_ok=True)
        self._db = sqlite3.connect(self.path, check_same_thread=False, isolation_level=None)
        self._db.execute("PRAGMA journal_mode=WAL" if self.path != ":memory:" else "PRAGMA journal_mode=MEMORY")
        self._db.executescript(_SCHEMA)
        self._lock = threading.Lock()
        self.org_id = org_id or self._org_id()

    def _org_id(self) -> str:
        return self.setting("org_id", lambda: str(uuid.uuid4()))

    def setting(self, name: str, make: Callable[[], str]) -> str:
        """A value kept in the file: made by `make` the first time, the same after every restart."""
        with self._lock:
            row = self._db.execute("SELECT value FROM meta WHERE key = ?", (name,)).fetchone()
            if row:
                return str(row[0])
            value = make()
            self._db.execute("INSERT INTO meta VALUES (?, ?)", (name, value))
            return value

    def close(self) -> None:
        """Close the file."""
        with self._lock:
            self._db.close()

    def create(self, kind: str, fields: dict[str, Any], *, resource_id: str | None = None) -> dict[str, Any]:
        """Store a new resource with `id`, `orgId`, `createdAt`, `updatedAt`; returns it."""
        now = now_iso()
        document = {
            **fields,
            "id": resource_id or str(uuid.uuid4()),
            "orgId": self.org_id,
            "createdAt": now,
            "updatedAt": now,
        }
        with self._lock:
            self._db.execute(
                "INSERT INTO resources VALUES (?, ?, ?, ?)", (kind, document["id"], now, json.dumps(document))
            )
        return document

    def get(self, kind: str, resource_id: str) -> dict[str, Any] | None:
        """One resource, or None."""
        with self._lock:
            row = self._db.execute(
                "SELECT data FROM resources WHERE kind = ? AND id = ?", (kind, resource_id)
            ).fetchone()
        return json.loads(row[0]) if row else None

    def query(self, kind: str, *, limit: int = 100, where: dict[str, Any] | None = None) -> list[dict[str, Any]]:
        """Newest first; `where` keeps documents whose top-level fields equal the given values."""
        with self._lock:
            rows = self._db.execute(
                "SELECT data FROM resources WHERE kind = ? ORDER BY created_at DESC, rowid DESC", (kind,)
            ).fetchall()
        documents = [json.loads(row[0]) for row in rows]
        if where:
            documents = [d for d in documents if all(d.get(k) == v for k, v in where.items())]
        return documents[:limit]

    def replace(self, kind: str, document: dict[str, Any]) -> dict[str, Any]:
        """Write `document` over the stored one (same id), bumping `updatedAt`; returns it."""
        document = {**document, "updatedAt": now_iso()}
        with self._lock:
            self._db.execute(
                "UPDATE resources SET data = ? WHERE kind = ? AND id = ?", (json.dumps(document), kind, document["id"])
            )
        return document

    def delete(self, kind: str, resource_id: str) -> dict[str, Any] | None:
        """Remove and return a resource (None when there was none)."""
        document = self.get(kind, resource_id)
        if document is not None:
            with self._lock:
                self._db.execute("DELETE FROM resources WHERE kind = ? AND id = ?", (kind, resource_id))
                self._db.execute("DELETE FROM credential_keys WHERE id = ?", (resource_id,))
        return document

    def set_secret(self, credential_id: str, api_key: str, extra: dict[str, Any] | None = None) -> None:
        """Keep a credential's key (and OAuth2 client secret) apart from what the API returns."""
        with self._lock:
            self._db.execute(
                "INSERT OR REPLACE INTO credential_keys VALUES (?, ?, ?)",
                (credential_id, api_key, json.dumps(extra or {})),
            )

    def secret(self, credential_id: str) -> str | None:
        """A credential's key."""
        with self._lock:
            row = self._db.execute("SELECT api_key FROM credential_keys WHERE id = ?", (credential_id,)).fetchone()
        return str(row[0]) if row else None

    def secret_extra(self, credential_id: str) -> dict[str, Any]:
        """What was kept beside a credential's key (its full OAuth2 `authenticationPlan`); {} without any."""
        with self._lock:
            row = self._db.execute("SELECT data FROM credential_keys WHERE id = ?", (credential_id,)).fetchone()
        extra = json.loads(row[0]) if row else {}
        return extra if isinstance(extra, dict) else {}

    def record_sent(self, entry: dict[str, Any]) -> None:
        """Keep a request the mock sent to an LLM (already redacted); only the newest ones are kept."""
        with self._lock:
            self._db.execute("INSERT INTO sent_requests (data) VALUES (?)", (json.dumps(entry),))
            self._db.execute(
                "DELETE FROM sent_requests WHERE seq <= (SELECT MAX(seq) FROM sent_requests) - ?", (_SENT_LIMIT,)
            )

    def sent(self, limit: int = 100) -> list[dict[str, Any]]:
        """The newest requests sent to LLMs, oldest first."""
        with self._lock:
            rows = self._db.execute("SELECT data FROM sent_requests ORDER BY seq DESC LIMIT ?", (limit,)).fetchall()
        return [json.loads(row[0]) for row in reversed(rows)]

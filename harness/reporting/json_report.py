"""Write the run's JSON document to a file."""

from __future__ import annotations

import json
from pathlib import Path

from harness.reporting.document import run_document
from harness.reporting.redact import Redactor
from harness.results import RunEvent, RunFinished

__all__ = ["JsonReport"]


class JsonReport:
    """Writes `report.json` when the run finishes (or is cut short)."""

    def __init__(self, path: Path, redactor: Redactor) -> None:
        self.path = path
        self.redactor = redactor

    def handle_event(self, event: RunEvent) -> None:
        """Write on `RunFinished`."""
        if isinstance(event, RunFinished):
            document = run_document(event.run, self.redactor)
            self.path.parent.mkdir(parents=True, exist_ok=True)
            tmp = self.path.with_name(self.path.name + ".tmp")
            tmp.write_text(json.dumps(document, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
            try:
                tmp.replace(self.path)
            finally:
                tmp.unlink(missing_ok=True)

    def close(self) -> None:
        """Nothing to release."""

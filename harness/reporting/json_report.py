"""Write the run's JSON document to a file."""

from __future__ import annotations

import json

from harness.reporting.document import run_document
from harness.reporting.file_report import FileReport
from harness.results import RunResult

__all__ = ["JsonReport"]


class JsonReport(FileReport):
    """Writes `report.json` when the run finishes (or is cut short)."""

    def render(self, run: RunResult) -> str:
        """The run's JSON document."""
        return json.dumps(run_document(run, self.redactor), indent=2, ensure_ascii=False) + "\n"

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
        document = run_document(run, self.redactor)
        for section in self.sections:
            document[section.key] = section.block(document)
        return json.dumps(document, indent=2, ensure_ascii=False) + "\n"

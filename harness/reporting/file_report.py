"""The one way a report reaches its file: rendered when the run finishes (or is cut short), then written."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import ClassVar

from harness.protocol import Redactor
from harness.reporting.base import ReportSection
from harness.results import RunEvent, RunFinished, RunResult

__all__ = ["FileReport", "write_report"]


def write_report(path: Path, content: str | bytes, *, append: bool = False) -> None:
    """Write a report's file, its folder made if missing: appended to its end (a CI step summary), or replaced
    whole so that a reader never sees it half written."""
    data = content.encode("utf-8") if isinstance(content, str) else content
    path.parent.mkdir(parents=True, exist_ok=True)
    if append:
        with path.open("ab") as handle:
            handle.write(data)
        return
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_bytes(data)
    try:
        tmp.replace(path)
    finally:
        tmp.unlink(missing_ok=True)


class FileReport:
    """A report in one file; a subclass says what goes in it (`render`) and whether it is appended to."""

    append: ClassVar[bool] = False  # True: added to the file's end (GitHub's step summary); False: replaced whole

    def __init__(self, path: Path, redactor: Redactor, sections: Sequence[ReportSection] = ()) -> None:
        self.path = path
        self.redactor = redactor
        self.sections = tuple(sections)  # what the command adds (a comparison), for the writers that carry it

    def render(self, run: RunResult) -> str | bytes:
        """The file's content for this run."""
        raise NotImplementedError

    def handle_event(self, event: RunEvent) -> None:
        """Write on `RunFinished`; a replaced file is never seen half written."""
        if not isinstance(event, RunFinished):
            return
        write_report(self.path, self.render(event.run), append=self.append)

    def close(self) -> None:
        """Nothing to release."""

"""What a report writer is: the one type `check` hands run events to."""

from __future__ import annotations

from typing import Any, Protocol

from harness.results import RunEvent

__all__ = ["ReportSection", "RunWriter"]


class RunWriter(Protocol):
    """Consumes the runner's events, in order, and writes one format; it never sends anything."""

    def handle_event(self, event: RunEvent) -> None:
        """Take one event; an `OSError` means this writer's output could not be written (the others go on)."""

    def close(self) -> None:
        """Release what the writer holds; called once after the last event, also when the run was cut short."""


class ReportSection(Protocol):
    """A part a command adds to a finished run's reports, worked out from the run's document (`check --baseline`:
    the comparison with the baseline). The file writers put it in: a block of the JSON document under `key`, a
    part of the Markdown summary, a section of the HTML page."""

    key: str

    def block(self, document: dict[str, Any]) -> dict[str, Any]:
        """The JSON block for the run's document."""

    def markdown(self, document: dict[str, Any]) -> str:
        """Markdown to append to the run's summary."""

    def html(self, document: dict[str, Any]) -> str:
        """An HTML section for the run's page."""

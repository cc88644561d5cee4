"""What a report writer is: the one type each command hands its events to."""

from __future__ import annotations

from typing import Any, Protocol, TypeVar

from harness.results import RunEvent

__all__ = ["EventWriter", "ReportSection", "RunWriter"]

E_contra = TypeVar("E_contra", contravariant=True)


class EventWriter(Protocol[E_contra]):
    """Consumes a command's events, in order, and writes one format; it never sends anything."""

    def handle_event(self, event: E_contra) -> None:
        """Take one event; an `OSError` means this writer's output could not be written (the others go on)."""

    def close(self) -> None:
        """Release what the writer holds; called once after the last event, also when the run was cut short."""


class RunWriter(EventWriter[RunEvent], Protocol):
    """Consumes the runner's events (`check`)."""


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

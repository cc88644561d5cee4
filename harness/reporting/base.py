"""What a report writer is: the one type `check` hands run events to."""

from __future__ import annotations

from typing import Protocol

from harness.results import RunEvent

__all__ = ["RunWriter"]


class RunWriter(Protocol):
    """Consumes the runner's events, in order, and writes one format; it never sends anything."""

    def handle_event(self, event: RunEvent) -> None:
        """Take one event; an `OSError` means this writer's output could not be written (the others go on)."""

    def close(self) -> None:
        """Release what the writer holds; called once after the last event, also when the run was cut short."""

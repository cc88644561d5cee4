"""The recording format: one JSON line per exchange, written by `vapi-harness proxy --record`, read by `check --replay`.

A line whose `version` is not `RECORDING_VERSION` is refused by the reader, so a change to the line's shape
bumps it here, where both sides read it.
"""

from __future__ import annotations

__all__ = ["RECORDING_VERSION"]

RECORDING_VERSION = 1

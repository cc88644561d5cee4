"""Conformance checks: pure functions over one recorded exchange, registered by id."""

from harness.checks import http, shape, streaming, tools, transport
from harness.checks.base import (
    REGISTRY,
    Check,
    CheckContext,
    CheckFailed,
    Expect,
    Finding,
    RecordedReply,
    Severity,
    Status,
    Thresholds,
    check,
    run_checks,
)

__all__ = [
    "REGISTRY",
    "Check",
    "CheckContext",
    "CheckFailed",
    "Expect",
    "Finding",
    "RecordedReply",
    "Severity",
    "Status",
    "Thresholds",
    "check",
    "http",
    "run_checks",
    "shape",
    "streaming",
    "tools",
    "transport",
]

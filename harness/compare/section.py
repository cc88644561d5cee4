"""A finished run compared with its baseline, for the run's own reports and exit code (`check --baseline`)."""

from __future__ import annotations

from typing import Any

from harness.compare.comparison import DEFAULT_CONFIDENCE, Comparison, Thresholds, compare_runs
from harness.compare.html import comparison_section
from harness.compare.model import RunView, run_from_document
from harness.compare.render import comparison_markdown

__all__ = ["ComparisonSection"]


class ComparisonSection:
    """The comparison block, Markdown and HTML section of a run's reports (a `ReportSection`); worked out once,
    from the first document a writer hands it (every writer of a run renders the same document)."""

    key = "comparison"

    def __init__(
        self, baseline: RunView, thresholds: Thresholds | None = None, confidence: float = DEFAULT_CONFIDENCE
    ) -> None:
        self.baseline = baseline
        self.thresholds = thresholds
        self.confidence = confidence
        self.result: Comparison | None = None

    def of(self, document: dict[str, Any]) -> Comparison:
        """The comparison of the run `document` describes with the baseline."""
        if self.result is None:
            new = run_from_document({k: v for k, v in document.items() if k != self.key}, "this run")
            self.result = compare_runs(self.baseline, new, self.thresholds, self.confidence)
        return self.result

    def block(self, document: dict[str, Any]) -> dict[str, Any]:
        """The JSON block."""
        return self.of(document).document()

    def markdown(self, document: dict[str, Any]) -> str:
        """The Markdown part."""
        return comparison_markdown(self.of(document))

    def html(self, document: dict[str, Any]) -> str:
        """The HTML section."""
        return comparison_section(self.of(document))

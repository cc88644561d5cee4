"""Compare two runs: latency percentiles judged against thresholds and noise, and the checks, scenarios and SLOs
that newly fail or pass (`vapi-harness compare`, `check --baseline`, `load --baseline`)."""

from harness.compare.comparison import (
    COMPARISON_KIND,
    DEFAULT_CONFIDENCE,
    STATS,
    Comparison,
    ItemChange,
    Move,
    Thresholds,
    compare_runs,
    confidence_level,
    parse_max_increase,
    require_kind,
)
from harness.compare.html import comparison_page, comparison_section
from harness.compare.model import COMPARED_METRICS, ItemKind, RunKind, RunView, load_run, run_from_document
from harness.compare.render import comparison_markdown, terminal_lines
from harness.compare.section import ComparisonSection
from harness.compare.stats import DEFAULT_THRESHOLD, MetricChange, Threshold, Verdict, judge_change

__all__ = [
    "COMPARED_METRICS",
    "COMPARISON_KIND",
    "DEFAULT_CONFIDENCE",
    "DEFAULT_THRESHOLD",
    "STATS",
    "Comparison",
    "ComparisonSection",
    "ItemChange",
    "ItemKind",
    "MetricChange",
    "Move",
    "RunKind",
    "RunView",
    "Threshold",
    "Thresholds",
    "Verdict",
    "compare_runs",
    "comparison_markdown",
    "comparison_page",
    "comparison_section",
    "confidence_level",
    "judge_change",
    "load_run",
    "parse_max_increase",
    "require_kind",
    "run_from_document",
    "terminal_lines",
]

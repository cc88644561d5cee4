"""Report writers: each consumes run events and writes one format."""

from harness.protocol import REDACTED, Redactor, is_secret_header
from harness.reporting.base import ReportSection, RunWriter
from harness.reporting.document import SCHEMA_VERSION, report_schema, run_document, validate_document
from harness.reporting.html import HtmlReport, Plots, html_page, render_html, render_load_html
from harness.reporting.json_report import JsonReport
from harness.reporting.junit import JUnitReport, junit_tree
from harness.reporting.markdown import MarkdownReport, markdown_summary
from harness.reporting.terminal import TerminalReport, render_results

__all__ = [
    "REDACTED",
    "SCHEMA_VERSION",
    "HtmlReport",
    "JUnitReport",
    "JsonReport",
    "MarkdownReport",
    "Plots",
    "Redactor",
    "ReportSection",
    "RunWriter",
    "TerminalReport",
    "html_page",
    "is_secret_header",
    "junit_tree",
    "markdown_summary",
    "render_html",
    "render_load_html",
    "render_results",
    "report_schema",
    "run_document",
    "validate_document",
]

"""Report writers: each consumes run events and writes one format."""

from harness.protocol import REDACTED, Redactor, is_secret_header
from harness.reporting.base import RunWriter
from harness.reporting.document import SCHEMA_VERSION, report_schema, run_document, validate_document
from harness.reporting.html import HtmlReport, render_html, render_load_html
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
    "Redactor",
    "RunWriter",
    "TerminalReport",
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

"""Report writers: each consumes run events and writes one format."""

from harness.protocol import REDACTED, Redactor, is_secret_header
from harness.reporting.base import EventWriter, ReportSection, RunWriter
from harness.reporting.document import (
    SCHEMA_VERSION,
    TOOL_NAME,
    document_header,
    report_schema,
    run_document,
    run_header,
    schema_errors,
    shipped_schema,
    validate_document,
)
from harness.reporting.file_report import write_report
from harness.reporting.html import HtmlReport, Plots, html_page, render_html, render_load_html
from harness.reporting.json_report import JsonReport
from harness.reporting.junit import JUnitReport, junit_tree
from harness.reporting.markdown import MarkdownReport, markdown_summary
from harness.reporting.terminal import INDENT, MARKS, TerminalReport, first_line, print_line, render_results

__all__ = [
    "INDENT",
    "MARKS",
    "REDACTED",
    "SCHEMA_VERSION",
    "TOOL_NAME",
    "EventWriter",
    "HtmlReport",
    "JUnitReport",
    "JsonReport",
    "MarkdownReport",
    "Plots",
    "Redactor",
    "ReportSection",
    "RunWriter",
    "TerminalReport",
    "document_header",
    "first_line",
    "html_page",
    "is_secret_header",
    "junit_tree",
    "markdown_summary",
    "print_line",
    "render_html",
    "render_load_html",
    "render_results",
    "report_schema",
    "run_document",
    "run_header",
    "schema_errors",
    "shipped_schema",
    "validate_document",
    "write_report",
]

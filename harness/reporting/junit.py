"""Write the run as JUnit XML: a testsuite per probe (and repeat), a testcase per check it ran; for scenarios,
a testsuite per scenario and a testcase per turn, failing with the broken expectations and the transcript."""

from __future__ import annotations

import xml.etree.ElementTree as ET

from harness.checks import Severity, Status
from harness.protocol import Redactor
from harness.reporting.file_report import FileReport
from harness.results import ExchangeResult, RunResult
from harness.scenarios.runner import ScenarioResult

__all__ = ["JUnitReport", "junit_tree"]


def _suite_name(result: ExchangeResult, repeats: int) -> str:
    return result.probe.name if repeats == 1 else f"{result.probe.name}[{result.repeat}]"


def junit_tree(run: RunResult, redactor: Redactor) -> ET.Element:
    """The JUnit document; failed warnings are failures only in strict runs, else noted in system-out."""
    root = ET.Element("testsuites", name="vapi-harness")
    totals = {"tests": 0, "failures": 0}
    in_scenarios = {id(x) for scenario in run.scenarios for turn in scenario.turns for x in turn.exchanges}
    for result in run.results:
        if id(result) in in_scenarios:
            continue
        exchange = result.exchange
        duration_s = exchange.t_end - exchange.t_start if exchange.t_end else 0.0
        suite = ET.SubElement(root, "testsuite", name=_suite_name(result, run.info.repeat))
        failures = skipped = 0
        notes = []
        for finding in result.findings:
            case = ET.SubElement(suite, "testcase", classname=f"vapi-harness.{result.probe.name}", name=finding.check)
            if finding.status is Status.NOT_JUDGED:
                skipped += 1
                ET.SubElement(case, "skipped", message=f"not judged: {redactor.text(finding.title)}")
                continue
            if finding.status is not Status.FAILED:
                continue
            message = redactor.text(finding.title)
            if finding.severity is Severity.ERROR or run.info.strict:
                failures += 1
                failure = ET.SubElement(case, "failure", message=message, type=finding.severity.value)
                failure.text = redactor.text(finding.detail)
            else:
                message += f" ({finding.note})" if finding.note else ""
                notes.append(f"warning {finding.check}: {message}")
                ET.SubElement(case, "system-out").text = f"warning: {message}\n{redactor.text(finding.detail)}"
        suite.set("tests", str(len(result.findings)))
        suite.set("failures", str(failures))
        suite.set("errors", "0")
        suite.set("skipped", str(skipped))
        suite.set("time", f"{duration_s:.3f}")
        totals["tests"] += len(result.findings)
        totals["failures"] += failures
        if notes:
            ET.SubElement(suite, "system-out").text = "\n".join(notes)
    for scenario in run.scenarios:
        _scenario_suite(root, scenario, redactor, totals)
    if run.interrupted or run.stopped_early:
        reason = run.interrupted or run.stopped_early or ""
        suite = ET.SubElement(root, "testsuite", name="run", tests="1", failures="1", errors="0", skipped="0")
        case = ET.SubElement(suite, "testcase", classname="vapi-harness.run", name="run_completed")
        ET.SubElement(case, "failure", message="The run did not complete", type="error").text = redactor.text(reason)
        totals["tests"] += 1
        totals["failures"] += 1
    root.set("tests", str(totals["tests"]))
    root.set("failures", str(totals["failures"]))
    root.set("errors", "0")
    ET.indent(root)
    return root


def _scenario_suite(root: ET.Element, scenario: ScenarioResult, redactor: Redactor, totals: dict[str, int]) -> None:
    suite = ET.SubElement(root, "testsuite", name=redactor.text(scenario.label))
    failures = 0
    transcript = "\n".join(f"{role:>11}: {text}" for role, text in scenario.transcript)
    for turn in scenario.turns:
        title = f"turn {turn.index}: {turn.user}" if turn.user is not None else f"turn {turn.index}: call start"
        case = ET.SubElement(suite, "testcase", classname=f"vapi-harness.scenario.{scenario.name}", name=title[:200])
        total = turn.timing.get("total_ms")
        case.set("time", f"{(total or 0) / 1000:.3f}")
        if turn.passed:
            continue
        failures += 1
        reasons = [f"{e.what}: {e.message}" for e in turn.failed_expectations] + turn.failed_checks
        failure = ET.SubElement(case, "failure", message=redactor.text(reasons[0])[:500], type="error")
        failure.text = redactor.text("\n".join(reasons) + f"\n\nTranscript ({scenario.source}):\n{transcript}")
    suite.set("tests", str(len(scenario.turns)))
    suite.set("failures", str(failures))
    suite.set("errors", "0")
    suite.set("skipped", "0")
    totals["tests"] += len(scenario.turns)
    totals["failures"] += failures


class JUnitReport(FileReport):
    """Writes the JUnit XML file when the run finishes (or is cut short)."""

    def render(self, run: RunResult) -> bytes:
        """The run as JUnit XML."""
        xml: bytes = ET.tostring(junit_tree(run, self.redactor), encoding="utf-8", xml_declaration=True)
        return xml

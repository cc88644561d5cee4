"""`vapi-harness check`: probe an endpoint the way Vapi calls it, judge and time every reply."""

from __future__ import annotations

import argparse
import asyncio
import logging
import re
import sys
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from rich.console import Console

from harness.checks import REGISTRY, Thresholds
from harness.cli.common import (
    check_output_files,
    dispatcher,
    endpoint,
    make_report_dir,
    new_run_id,
    redacted_logs,
    stdout_console,
)
from harness.cli.compare import GATE_OPTIONS, gate_summary, print_comparison, thresholds_of
from harness.cli.options import (
    ENDPOINT_OPTIONS,
    MAX_RUN_S_OPTION,
    REPORT_FILE_OPTIONS,
    Option,
    Subparsers,
    add_options,
    name_value,
    non_negative_float,
    positive_float,
    positive_int,
    resolve,
)
from harness.compare import ComparisonSection, RunKind, load_run, require_kind
from harness.endpoint import validate_url
from harness.judging import RunSettings
from harness.protocol import is_http_url
from harness.replay import load_recording
from harness.reporting import (
    HtmlReport,
    JsonReport,
    JUnitReport,
    MarkdownReport,
    Redactor,
    ReportSection,
    RunWriter,
    TerminalReport,
    is_secret_header,
    run_document,
)
from harness.results import RunEvent, RunInfo
from harness.runner import Runner, TokenAuth
from harness.scenarios.suites import load_suites
from harness.suite import Probe, Target, default_probes
from mock_vapi import CustomLLMModel, InvalidModelConfig, MetadataSendMode
from mock_vapi.errors import ConfigError, did_you_mean
from mock_vapi.oauth2 import OAuth2Plan, TokenError, TokenSource
from mock_vapi.reader import ReadLimits
from mock_vapi.scenarios.model import BARGE_IN_PAUSE_MS, Scenario
from mock_vapi.variables import TemplateError

__all__ = ["add_parser", "run"]

ENV_PREFIX = "VAPI_HARNESS_"
log = logging.getLogger(__name__)


_TOKEN = re.compile(r"[!#$%&'*+.^_`|~0-9A-Za-z-]+")


def header(text: str) -> tuple[str, str]:
    """`NAME:VALUE`."""
    name, sep, value = text.partition(":")
    name, value = name.strip(), value.strip()
    if not sep or not _TOKEN.fullmatch(name):
        raise ValueError(f"{text!r} is not NAME:VALUE (a header name has no spaces or separators)")
    if any(c in value for c in "\r\n\0"):
        raise ValueError(f"the value of {name!r} contains a line break or NUL")
    return name, value


def check_id(text: str) -> str:
    """A registered check id."""
    if text not in REGISTRY:
        raise ValueError(
            f"unknown check {text!r}.{did_you_mean(text, REGISTRY, cutoff=0)} Every check is listed in docs/checks.md."
        )
    return text


OPTIONS = [
    *ENDPOINT_OPTIONS,
    Option(
        "--oauth2-token-url",
        "Fetch an OAuth2 client-credentials token here and send it as 'Authorization: Bearer TOKEN' in place of "
        "--api-key, as Vapi does for an oauth2 authenticationPlan (reused while valid, fetched again after)",
        metavar="URL",
    ),
    Option("--oauth2-client-id", "The plan's clientId", metavar="ID"),
    Option(
        "--oauth2-client-secret",
        "The plan's clientSecret (prefer the environment variable: a flag is seen by other users and kept in "
        "shell history)",
        metavar="SECRET",
    ),
    Option("--oauth2-scope", "The plan's scope, sent in the token request when given", metavar="SCOPE"),
    Option(
        "--oauth2-client-auth",
        "How the client id and secret reach the token endpoint: in the form body or as HTTP basic auth "
        "(Vapi does not document which)",
        default="body",
        choices=["body", "basic"],
    ),
    Option("--model", "model.model sent in every request", default="vapi-harness-probe", metavar="NAME"),
    Option(
        "--metadata-send-mode",
        "model.metadataSendMode of the main probes",
        default="variable",
        choices=[m.value for m in MetadataSendMode],
    ),
    Option(
        "--header",
        "Extra model.headers entry; repeatable (env: one per line)",
        type=header,
        repeatable=True,
        metavar="NAME:VALUE",
    ),
    Option(
        "--variable",
        "A variable of the call, as assistantOverrides.variableValues gives it (a string): sent in every probe's "
        "call.assistantOverrides.variableValues and filled into --system-prompt; over a --suite scenario's own "
        "variables (the command line wins); repeatable (env: one per line)",
        type=name_value,
        repeatable=True,
        metavar="NAME=VALUE",
    ),
    Option(
        "--system-prompt",
        "The default probes' system prompt, a Liquid template filled with the variables and Vapi's built-ins "
        "(default: the suite's receptionist prompt)",
        metavar="TEXT",
    ),
    Option(
        "--word-level-confidence",
        "The assistant enables wordLevelConfidenceEnabled: the transcriber_extras probe sends word confidences "
        "on its user message",
        default=False,
        flag_only=True,
    ),
    Option(
        "--emotion-recognition",
        "The assistant enables emotionRecognitionEnabled: the transcriber_extras probe sends the caller's "
        "emotion on its user message",
        default=False,
        flag_only=True,
    ),
    Option(
        "--timeout-s",
        "model.timeoutSeconds: first content or tool call must arrive within it",
        default=20.0,
        type=positive_float,
    ),
    Option("--deadline-s", "Hard bound on one request, start to end (default: --timeout-s + 10)", type=positive_float),
    Option("--close-grace-s", "How long the body may stay open after the last chunk", default=2.0, type=positive_float),
    MAX_RUN_S_OPTION,
    Option("--repeat", "Run the suite N times (percentiles over all runs)", default=1, type=positive_int, metavar="N"),
    Option("--strict", "Warnings fail the run too", default=False, flag_only=True),
    Option(
        "--max-stall-ms",
        "Budget for the longest gap between content events",
        default=Thresholds.max_stall_ms,
        type=positive_float,
    ),
    Option(
        "--first-sentence-ms",
        "Budget for the first speakable sentence",
        default=Thresholds.first_sentence_ms,
        type=positive_float,
    ),
    Option(
        "--barge-in-pause-ms",
        "From the barge-in probe's abort to the re-sent turn (the caller finishing the utterance, then endpointing)",
        default=BARGE_IN_PAUSE_MS,
        type=non_negative_float,
    ),
    Option("--disable", "Switch a check off; repeatable", type=check_id, repeatable=True, metavar="CHECK"),
    Option(
        "--replay",
        "Send the requests of a recording (vapi-harness proxy --record) instead of the default suite",
        type=Path,
        metavar="PATH.jsonl",
    ),
    Option(
        "--suite",
        "Play the scenarios of a suite (a .yaml file, a folder, or a shipped suite's name) instead of the "
        "default probes; repeatable",
        repeatable=True,
        metavar="PATH_OR_NAME",
    ),
    Option(
        "--baseline",
        "Compare the finished run with this earlier report (e.g. main's report.json): exit 1 on a latency "
        "regression beyond noise or a newly failing check or scenario; the reports carry the comparison",
        type=Path,
        metavar="PATH",
    ),
    *GATE_OPTIONS,
    *REPORT_FILE_OPTIONS,
    Option("--html", "Also write a self-contained HTML report here", type=Path, metavar="PATH"),
    Option("--report-dir", "Reports go to DIR/<run-id>/", default=Path("reports"), type=Path, metavar="DIR"),
    Option("--quiet", "No progress lines on stderr", default=False, flag_only=True),
    Option("--verbose", "List every check in the results, passing ones too", default=False, flag_only=True, short="-v"),
]


def add_parser(subparsers: Subparsers) -> None:
    """Register the `check` subcommand."""
    parser = subparsers.add_parser(
        "check",
        help="check an endpoint the way Vapi calls it",
        description="Send the requests Vapi sends to a custom LLM, judge every reply and time it. "
        "Exit 0 when all checks pass, 1 when one fails, 2 for bad input.",
    )
    add_options(parser, OPTIONS, ENV_PREFIX)
    parser.set_defaults(handler=run)


@dataclass(frozen=True)
class _Config:
    values: dict[str, Any]

    def __getattr__(self, name: str) -> Any:
        return self.values[name]


def _model(config: _Config, url: str) -> CustomLLMModel:
    headers = {}
    for name, value in config.header:
        if name.lower() == "authorization":
            log.warning("--header Authorization ignored: Vapi never lets model.headers set it; use --api-key")
            continue
        headers[name] = value
    vapi_model = {
        "provider": "custom-llm",
        "url": url,
        "model": config.model,
        "metadataSendMode": config.metadata_send_mode,
        "headers": headers,
        "timeoutSeconds": config.timeout_s,
        "messages": [],
    }
    try:
        return CustomLLMModel.from_vapi(vapi_model)
    except InvalidModelConfig as exc:
        raise ConfigError(str(exc)) from None


def run(args: argparse.Namespace) -> int:
    """Run the default suite; return the exit code."""
    config = _Config(resolve(args, OPTIONS, ENV_PREFIX))
    if config.url:
        validate_url(config.url)
    deadline_s = config.deadline_s or config.timeout_s + 10
    if deadline_s <= config.timeout_s:
        raise ConfigError(f"--deadline-s ({deadline_s:g}) must be greater than --timeout-s ({config.timeout_s:g})")
    _check_combinations(config)
    secrets = [config.api_key, config.oauth2_client_secret]
    redactor = Redactor([*secrets, *(value for name, value in config.header if is_secret_header(name))])
    with redacted_logs(redactor):
        return _run(config, redactor, deadline_s)


_DEFAULT_PROBES_ONLY = ("system_prompt", "word_level_confidence", "emotion_recognition")


def _check_combinations(config: _Config) -> None:
    """One line for options that do not go together, or that need another."""
    if config.oauth2_token_url:
        if config.api_key:
            raise ConfigError(
                "--api-key and --oauth2-token-url cannot be combined (check VAPI_HARNESS_API_KEY too): the probes "
                "carry a static key or a fetched token, not both"
            )
        if not is_http_url(config.oauth2_token_url):
            raise ConfigError(f"--oauth2-token-url: {config.oauth2_token_url!r} is not an http(s) URL")
        if not config.oauth2_client_id:
            raise ConfigError("--oauth2-token-url needs --oauth2-client-id")
        if not config.oauth2_client_secret:
            raise ConfigError("--oauth2-token-url needs the client secret: set VAPI_HARNESS_OAUTH2_CLIENT_SECRET")
        if not config.url:
            raise ConfigError("--oauth2-token-url needs --url: the built-in endpoint only checks a static key")
    else:
        given = [name for name in ("oauth2_client_id", "oauth2_client_secret", "oauth2_scope") if config.values[name]]
        if given:
            flag, env = f"--{given[0].replace('_', '-')}", f"{ENV_PREFIX}{given[0].upper()}"
            raise ConfigError(f"{flag} (or {env}) needs --oauth2-token-url")
    other = "--replay" if config.replay else "--suite" if config.suite else None
    if other is None:
        return
    given = [name for name in _DEFAULT_PROBES_ONLY if config.values[name]]
    if config.replay and config.variable:
        given.insert(0, "variable")
    if given:
        raise ConfigError(
            f"--{given[0].replace('_', '-')} shapes the default probes; {other} sends its own requests instead"
        )


def _token_auth(config: _Config, redactor: Redactor) -> TokenAuth | None:
    """The run's OAuth2 tokens, when it has a plan."""
    if not config.oauth2_token_url:
        return None
    plan = OAuth2Plan(
        config.oauth2_token_url,
        config.oauth2_client_id,
        config.oauth2_client_secret,
        config.oauth2_scope,
        config.oauth2_client_auth,
    )
    return TokenAuth(TokenSource(plan), redactor)


def _with_variables(scenarios: list[Scenario], variables: Mapping[str, str]) -> list[Scenario]:
    """The scenarios with the `--variable` values over each file's own `variables`: for a name both give, the
    command line wins, as an override does."""
    if not variables:
        return scenarios
    return [replace(scenario, variables={**scenario.variables, **variables}) for scenario in scenarios]


def _probes(config: _Config, model: CustomLLMModel, scenarios: list[Scenario]) -> list[Probe]:
    """What the run sends before its scenarios: a recording's requests, or the default probes (none with --suite)."""
    if config.replay:
        return load_recording(config.replay, model, config.api_key)
    if scenarios:
        return []
    target = Target(
        model,
        config.api_key,
        variables=dict(config.variable),
        system_prompt=config.system_prompt,
        word_confidence=config.word_level_confidence,
        emotion=config.emotion_recognition,
        token_auth=bool(config.oauth2_token_url),
    )
    try:
        return default_probes(target, barge_in_pause_ms=config.barge_in_pause_ms)
    except TemplateError as exc:
        raise ConfigError(f"--system-prompt is not a template Vapi could fill ({exc})") from None


def _run(config: _Config, redactor: Redactor, deadline_s: float) -> int:
    run_id = new_run_id()
    out_dir = config.report_dir / run_id
    if config.suite and config.replay:
        raise ConfigError("--suite and --replay cannot be combined: each replaces the default probes")
    scenarios = _with_variables(load_suites(config.suite), dict(config.variable)) if config.suite else []
    make_report_dir(out_dir)
    check_output_files(
        {"--json": config.json, "--junit": config.junit, "--markdown": config.markdown, "--html": config.html}
    )
    section = _comparison(config)
    sections: list[ReportSection] = [section] if section is not None else []
    writers: list[RunWriter] = [
        TerminalReport(
            stdout_console(),
            Console(stderr=True, quiet=config.quiet, highlight=False),
            redactor,
            verbose=config.verbose,
        ),
        JsonReport(out_dir / "report.json", redactor, sections),
        JUnitReport(out_dir / "junit.xml", redactor),
    ]
    if config.json:
        writers.append(JsonReport(config.json, redactor, sections))
    if config.junit:
        writers.append(JUnitReport(config.junit, redactor))
    if config.markdown:
        writers.append(MarkdownReport(config.markdown, redactor, sections))
    if config.html:
        writers.append(HtmlReport(config.html, redactor, sections))
    settings = RunSettings(
        repeat=config.repeat,
        limits=ReadLimits(deadline_s=deadline_s, close_grace_s=config.close_grace_s),
        thresholds=Thresholds(max_stall_ms=config.max_stall_ms, first_sentence_ms=config.first_sentence_ms),
        disabled_checks=frozenset(config.disable),
    )
    with endpoint(config.url, config.api_key) as (url, builtin):
        model = _model(config, url)
        probes = _probes(config, model, scenarios)
        info = RunInfo(
            run_id=run_id,
            url=url,
            model=config.model,
            metadata_send_mode=config.metadata_send_mode,
            builtin=builtin,
            authenticated=bool(config.api_key or config.oauth2_token_url),
            timeout_s=config.timeout_s,
            repeat=config.repeat,
            strict=config.strict,
            probes=tuple(p.name for p in probes),
            started_at=datetime.now(UTC),
            suites=tuple(config.suite),
            scenarios=tuple(s.name for s in scenarios),
            thresholds=(("max_stall_ms", config.max_stall_ms), ("first_sentence_ms", config.first_sentence_ms)),
        )
        auth = _token_auth(config, redactor)
        runner = Runner(info, probes, settings, scenarios, api_key=config.api_key, headers=model.headers, auth=auth)
        try:
            passed = asyncio.run(_drive(runner, writers, config.max_run_s))
        except KeyboardInterrupt:
            # asyncio.run re-raises Ctrl-C after _drive has written the reports.
            sys.stderr.write(f"Interrupted. Partial reports are in {out_dir}\n")
            return 130
        except TokenError as exc:  # the first token, before anything was sent: the plan is the user's to fix
            raise ConfigError(f"--oauth2-token-url: {exc}") from None
    sys.stderr.write(f"Reports: {out_dir}\n")
    if section is not None:
        comparison = section.of(run_document(runner.run, redactor))
        print_comparison(comparison)
        for line in gate_summary(comparison):
            sys.stderr.write(line + "\n")
        passed = passed and not comparison.regressed
    return 0 if passed else 1


def _comparison(config: _Config) -> ComparisonSection | None:
    """The baseline to gate the run on, read (and its kind checked) before anything is sent."""
    if config.baseline is None:
        if config.max_increase:
            raise ConfigError("--max-increase needs --baseline: it says how the run is compared with one")
        return None
    baseline = load_run(config.baseline)
    require_kind(baseline, RunKind.SUITE if config.suite else RunKind.CHECK, "this run")
    return ComparisonSection(baseline, thresholds_of(config.values), config.confidence)


async def _drive(runner: Runner, writers: Sequence[RunWriter], max_run_s: float) -> bool:
    dispatch: Callable[[RunEvent], None] = dispatcher(writers)
    try:
        async with asyncio.timeout(max_run_s):
            async for event in runner.events():
                dispatch(event)
    except TimeoutError:
        dispatch(runner.interrupted(f"the run exceeded --max-run-s {max_run_s:g}"))
    except asyncio.CancelledError:
        dispatch(runner.interrupted("Ctrl-C"))
        raise
    finally:
        for writer in writers:
            writer.close()
    # A bool, not the run: asyncio.run's teardown takes the repr of what the main task returns.
    return runner.run.passed

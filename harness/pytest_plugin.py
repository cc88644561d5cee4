"""The pytest plugin: scenario files become test items, and fixtures run scenarios or single Vapi turns.

    pytest scenarios/ --vapi-url https://llm.example.com/v1 [--vapi-api-key KEY] [--junitxml junit.xml]

Without `--vapi-url` the built-in endpoint is started on loopback for the session. A YAML file is collected
when it is a scenario file (a mapping with `name` and `turns`); one test item per file. Registered through the
`pytest11` entry point, so installing vapi-harness is enough.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import re
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import pytest

__all__ = ["ScenarioFailed", "ScenarioFile", "ScenarioItem"]

_SCENARIO_KEYS = re.compile(r"^turns\s*:", re.MULTILINE)
_NAME_KEY = re.compile(r"^name\s*:", re.MULTILINE)
_URL = pytest.StashKey[str]()
_STACK = pytest.StashKey[contextlib.ExitStack]()
_BODY_LIMIT = 2000


def pytest_addoption(parser: pytest.Parser) -> None:
    """`--vapi-url`, `--vapi-api-key`, `--vapi-timeout-s`."""
    group = parser.getgroup("vapi-harness", "vapi-harness: Vapi scenarios against a custom LLM")
    group.addoption("--vapi-url", metavar="URL", help="base URL of the custom LLM (model.url); default: built-in")
    group.addoption(
        "--vapi-api-key",
        metavar="KEY",
        default=os.environ.get("VAPI_HARNESS_API_KEY"),
        help="key sent as 'Authorization: Bearer KEY' (default: $VAPI_HARNESS_API_KEY)",
    )
    group.addoption("--vapi-timeout-s", type=float, default=20.0, help="model.timeoutSeconds (default 20)")


def pytest_configure(config: pytest.Config) -> None:
    """Check `--vapi-url` early, so a typo is a usage error and not one failure per scenario."""
    url = config.getoption("--vapi-url", default=None)
    if url:
        from harness.endpoint import validate_url
        from harness.errors import ConfigError

        try:
            validate_url(url, "--vapi-url")
        except ConfigError as exc:
            raise pytest.UsageError(str(exc)) from None


def pytest_unconfigure(config: pytest.Config) -> None:
    """Stop the built-in endpoint if this session started it."""
    stack = config.stash.get(_STACK, None)
    if stack is not None:
        stack.close()


def _endpoint(config: pytest.Config) -> str:
    url = config.stash.get(_URL, None)
    if url is not None:
        return url
    url = config.getoption("--vapi-url", default=None)
    if not url:
        from harness.endpoint import builtin_endpoint

        stack = contextlib.ExitStack()
        url = stack.enter_context(builtin_endpoint(config.getoption("--vapi-api-key")))
        config.stash[_STACK] = stack
    config.stash[_URL] = url
    return str(url)


def _settings(config: pytest.Config) -> Any:
    from harness.reader import ReadLimits
    from harness.runner import RunSettings

    timeout_s = float(config.getoption("--vapi-timeout-s"))
    return RunSettings(limits=ReadLimits(deadline_s=timeout_s + 10))


def pytest_collect_file(file_path: Path, parent: pytest.Collector) -> pytest.Collector | None:
    """Scenario files only: other YAML in the tree (CI configs...) is left alone."""
    if file_path.suffix not in (".yaml", ".yml"):
        return None
    try:
        head = file_path.read_text(encoding="utf-8", errors="replace")[:200_000]
    except OSError:
        return None
    if not (_SCENARIO_KEYS.search(head) and _NAME_KEY.search(head)):
        return None
    collector: ScenarioFile = ScenarioFile.from_parent(parent, path=file_path)
    return collector


class ScenarioFile(pytest.File):
    """A scenario file: one item, or a collection error that names the file, the line and the path."""

    def collect(self) -> Iterator[pytest.Item]:
        """Load and validate the file."""
        from harness.scenarios.loader import ScenarioError, load_file

        try:
            scenario = load_file(self.path)
        except ScenarioError as exc:
            raise self.CollectError(str(exc)) from None
        yield ScenarioItem.from_parent(self, name=scenario.name, scenario=scenario)


class ScenarioFailed(Exception):
    """A played scenario broke an expectation or an error-level check."""

    def __init__(self, results: Sequence[Any]) -> None:
        super().__init__(f"{sum(not r.passed for r in results)} call(s) failed")
        self.results = list(results)


class ScenarioItem(pytest.Item):
    """One scenario, played against the endpoint under test."""

    def __init__(self, *, scenario: Any, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.scenario = scenario

    def runtest(self) -> None:
        """Play every copy of the call; fail with the broken expectations."""
        results = _play(self.config, [self.scenario])
        if not all(r.passed for r in results):
            raise ScenarioFailed(results)

    def repr_failure(self, excinfo: pytest.ExceptionInfo[BaseException], style: Any = None) -> str:
        """The failing expectations, the request that caused them, and the transcript; no traceback."""
        if isinstance(excinfo.value, ScenarioFailed):
            return describe_failure(excinfo.value.results, self.config.getoption("--vapi-api-key"))
        return str(super().repr_failure(excinfo))

    def reportinfo(self) -> tuple[Path, int | None, str]:
        """Where the scenario lives."""
        return self.path, 0, f"scenario: {self.name}"


def _play(config: pytest.Config, scenarios: Sequence[Any]) -> list[Any]:
    from harness.reader import new_session
    from harness.scenarios.runner import play_scenarios

    url = _endpoint(config)
    api_key = config.getoption("--vapi-api-key")

    async def go() -> list[Any]:
        async with new_session() as session:
            return await play_scenarios(scenarios, url, session, _settings(config), api_key=api_key)

    return asyncio.run(go())


def describe_failure(results: Sequence[Any], api_key: str | None) -> str:
    """Plain text for a failed scenario: per failing turn, what broke and the request; then the transcript."""
    from harness.reporting import Redactor

    redactor = Redactor([api_key])
    lines: list[str] = []
    for result in results:
        if result.passed:
            continue
        lines.append(f"{result.label} ({result.source}) ended: {result.ended_reason}")
        for turn in result.turns:
            if turn.passed:
                continue
            who = f"caller: {turn.user!r}" if turn.user is not None else "call start"
            lines.append(f"  turn {turn.index} ({who})")
            lines += [f"    ✗ {e.what}: {redactor.text(e.message)}" for e in turn.failed_expectations]
            lines += [f"    ✗ check {redactor.text(c)}" for c in turn.failed_checks]
            if turn.exchanges:
                request = turn.exchanges[-1].exchange.request
                body = json.dumps(redactor.deep(request.json_body), ensure_ascii=False)
                lines.append(f"    request: {request.method} {redactor.text(request.url)}")
                lines.append(f"    body: {body[:_BODY_LIMIT]}{'…' if len(body) > _BODY_LIMIT else ''}")
        lines.append("  transcript:")
        lines += [f"    {role:>11}: {redactor.text(text)}" for role, text in result.transcript]
    return "\n".join(lines)


@pytest.fixture(scope="session")
def vapi_url(request: pytest.FixtureRequest) -> str:
    """The base URL under test: `--vapi-url`, or the built-in endpoint started for the session."""
    return _endpoint(request.config)


@pytest.fixture
def vapi_scenario(request: pytest.FixtureRequest) -> Callable[[str | Path | Mapping[str, Any]], list[Any]]:
    """Play a scenario (a file path, or a dict in the file format); returns one `ScenarioResult` per call copy.

    `assert all(r.passed for r in vapi_scenario("scenarios/booking.yaml"))`
    """

    def play(source: str | Path | Mapping[str, Any]) -> list[Any]:
        from harness.scenarios.loader import load_document, load_file

        scenario = load_document(dict(source), "<dict>") if isinstance(source, Mapping) else load_file(Path(source))
        return _play(request.config, [scenario])

    return play


@pytest.fixture
def vapi_turn(request: pytest.FixtureRequest) -> Callable[..., Any]:
    """Send one Vapi turn (`messages`, plus Vapi model fields as keywords) and judge it with every check.

    `result = vapi_turn([{"role": "user", "content": "Hi"}], tools=[...], metadataSendMode="off")`;
    `result.exchange.text`, `result.failed` (failed checks), `result.metrics["ttft_ms"]`.
    """

    def turn(messages: Sequence[Mapping[str, Any]], *, stream: bool = True, **model: Any) -> Any:
        from harness.checks import CheckContext, Expect, run_checks
        from harness.exchange import Exchange
        from harness.metrics import exchange_metrics
        from harness.reader import new_session, read_into
        from harness.results import ExchangeResult
        from harness.suite import Probe
        from mock_vapi import CustomLLMModel, build_request

        config = request.config
        vapi_model = {"model": "vapi-harness-probe", "timeoutSeconds": config.getoption("--vapi-timeout-s")}
        vapi_model |= {**model, "provider": "custom-llm", "url": _endpoint(config)}
        built = build_request(
            CustomLLMModel.from_vapi(vapi_model), messages, api_key=config.getoption("--vapi-api-key"), stream=stream
        )

        async def go() -> Exchange:
            async with new_session() as session:
                exchange = Exchange(built, time.perf_counter())
                return await read_into(session, exchange, _settings(config).limits)

        exchange = asyncio.run(go())
        probe = Probe(name="vapi_turn", description="a turn sent by the vapi_turn fixture", request=built)
        findings = run_checks(CheckContext(probe.name, Expect.TURN), exchange)
        return ExchangeResult(probe, 1, exchange, findings, exchange_metrics(exchange))

    return turn

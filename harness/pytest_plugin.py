"""The pytest plugin: scenario files become test items, and fixtures run scenarios or single Vapi turns.

    pytest scenarios/ --vapi-url https://llm.example.com/v1 [--vapi-api-key KEY] [--junitxml junit.xml]

Without `--vapi-url` the built-in endpoint is started on loopback for the session. A YAML file is collected
when it is a scenario file (a mapping with `name` and `turns`); one test item per file. Registered through the
`pytest11` entry point, so installing vapi-harness is enough.

A failed scenario shows what broke first, then what the assistant said and a short summary of the request
(`-vv` adds the whole body, secrets redacted); the short summary line (`-ra`) gives the first reason.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import re
import textwrap
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

# A longrepr with a `reprcrash` gives pytest's short summary line and JUnit's failure message their text.
from _pytest._code.code import ReprFileLocation, TerminalRepr

if TYPE_CHECKING:
    from _pytest._io import TerminalWriter

    from harness.reporting import Redactor
    from harness.results import ExchangeResult
    from harness.scenarios.runner import ScenarioResult, TurnResult
    from mock_vapi import VapiRequest
    from mock_vapi.exchange import Exchange
    from mock_vapi.reader import ReadLimits

__all__ = [
    "ScenarioFailed",
    "ScenarioFailureRepr",
    "ScenarioFile",
    "ScenarioItem",
    "VapiExplore",
    "VapiTurn",
    "describe_exploration",
]

_SCENARIO_KEYS = re.compile(r"^turns\s*:", re.MULTILINE)
_NAME_KEY = re.compile(r"^name\s*:", re.MULTILINE)
_URL = pytest.StashKey[str]()
_STACK = pytest.StashKey[contextlib.ExitStack]()
_WIDTH = 100  # a failure report wraps at this many columns, or at the terminal's width when it is narrower
_REPLY_CHARS = 400  # what the assistant said, a transcript line under -vv
_QUOTE_CHARS = 200  # the last user message; a broken expectation under -vv
_PROBLEM_CHARS = 120  # a broken expectation (its quote of the reply is cut: the reply follows it)
_REASON_CHARS = 100  # the reason on the short summary line
_TRANSCRIPT_LINES = 12  # the end of the call's transcript; -vv shows all of it


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
        from mock_vapi.errors import ConfigError

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
    from harness.judging import RunSettings
    from mock_vapi.reader import ReadLimits

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
        from mock_vapi.scenarios.loader import ScenarioError, load_file

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

    def repr_failure(self, excinfo: pytest.ExceptionInfo[BaseException], style: Any = None) -> str | TerminalRepr:
        """What broke, what was said and the request that caused it; the whole body under -vv; no traceback."""
        if isinstance(excinfo.value, ScenarioFailed):
            full = int(self.config.getoption("verbose")) >= 2
            api_key = self.config.getoption("--vapi-api-key")
            return describe_failure(excinfo.value.results, api_key, self.path, full=full)
        return super().repr_failure(excinfo, style)

    def reportinfo(self) -> tuple[Path, int | None, str]:
        """Where the scenario lives."""
        return self.path, 0, f"scenario: {self.name}"


def _play(config: pytest.Config, scenarios: Sequence[Any]) -> list[Any]:
    from harness.scenarios.runner import play_scenarios
    from mock_vapi.reader import new_session

    url = _endpoint(config)
    api_key = config.getoption("--vapi-api-key")

    async def go() -> list[Any]:
        async with new_session() as session:
            return await play_scenarios(scenarios, url, session, _settings(config), api_key=api_key)

    return asyncio.run(go())


def _cut(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _quote(text: str, limit: int) -> str:
    return json.dumps(_cut(text, limit), ensure_ascii=False)


def _kind(value: Any) -> str:
    """`str 'Hello'`: the type and a short repr, for an error message."""
    return f"{type(value).__name__} {_cut(repr(value), 60)}"


@dataclass(frozen=True)
class _Line:
    """One line of a failure report: wrapped to the width when written, or cut to one row (`cut`)."""

    indent: int
    text: str
    failure: bool = False
    cut: bool = False

    def rows(self, width: int) -> list[str]:
        room = max(width - self.indent, 20)
        pad = " " * self.indent
        if self.cut:
            return [pad + _cut(self.text, room)]
        wrapped = textwrap.wrap(self.text, room, subsequent_indent="  ", break_on_hyphens=False)
        return [pad + row for row in wrapped] or [pad]


class ScenarioFailureRepr(TerminalRepr):
    """A failed scenario as pytest shows it; `reprcrash.message` is the reason on the short summary line."""

    def __init__(self, lines: Sequence[_Line], reason: str, path: Path) -> None:
        self.lines = list(lines)
        self.reprcrash = ReprFileLocation(str(path), 1, reason)

    def toterminal(self, tw: TerminalWriter) -> None:
        """The lines, wrapped to the terminal (at most 100 columns); broken expectations in red."""
        width = max(min(tw.fullwidth, _WIDTH), 40)
        for line in self.lines:
            for row in line.rows(width):
                tw.line(row, red=line.failure)


def _problems(turn: TurnResult) -> list[tuple[str, str]]:
    """Each broken expectation and error-level check failure of a turn: (the line shown, the reason given)."""
    problems = [(f"{e.what}: {e.message}", e.message) for e in turn.failed_expectations]
    return problems + [(f"check {c}", f"check {c}") for c in turn.failed_checks]


def _last_user_message(messages: Sequence[Any]) -> str | None:
    """The text of the last `user` message (the parts of a multi-part one joined), or None without one."""
    message = next((m for m in reversed(messages) if isinstance(m, Mapping) and m.get("role") == "user"), None)
    if message is None:
        return None
    content = message.get("content")
    if isinstance(content, list):
        return " ".join(str(p.get("text", "")) for p in content if isinstance(p, Mapping))
    return content if isinstance(content, str) else json.dumps(content, ensure_ascii=False)


class _FailureReport:
    """The report of a failed scenario: per failing turn what broke, what was said and the request sent."""

    def __init__(self, results: Sequence[ScenarioResult], redactor: Redactor, *, full: bool) -> None:
        self.several = len(results) > 1
        self.failed = [r for r in results if not r.passed]
        self.redactor = redactor
        self.full = full

    def text(self, value: str) -> str:
        """`value` on one line, secrets redacted."""
        return " ".join(self.redactor.text(value).split())

    def where(self, result: ScenarioResult, turn: TurnResult) -> str:
        return (f"call {result.copy + 1}, " if self.several else "") + f"turn {turn.index}"

    def first_problem(self, results: Sequence[ScenarioResult]) -> str | None:
        """`turn 2: expected ...` for the first thing that broke, with how many more there are."""
        found = [(r, t, why) for r in results for t in r.turns if not t.passed for _, why in _problems(t)]
        if not found:
            return None
        result, turn, why = found[0]
        more = f" (and {len(found) - 1} more)" if len(found) > 1 else ""
        return _cut(f"{self.where(result, turn)}: {self.text(why)}", _REASON_CHARS) + more

    def reason(self) -> str:
        """The first thing that broke, for the short summary line."""
        return self.first_problem(self.failed) or "the scenario failed"

    def lines(self) -> list[_Line]:
        """Every failed call in full under -vv; else the first, and one line for each other failed call."""
        lines: list[_Line] = []
        for number, result in enumerate(self.failed):
            if number and not self.full:
                lines.append(_Line(0, f"✗ {self.first_problem([result])}", True))
                continue
            for turn in result.turns:
                if not turn.passed:
                    lines += self.turn(result, turn)
            ended = f"call {result.copy + 1} ended" if self.several else "the call ended"
            lines.append(_Line(0, f"{ended}: {result.ended_reason}"))
            lines += self.transcript(result)
        return lines

    def turn(self, result: ScenarioResult, turn: TurnResult) -> list[_Line]:
        where, limit = self.where(result, turn), _QUOTE_CHARS if self.full else _PROBLEM_CHARS
        lines = [_Line(0, f"✗ {where}: {_cut(self.text(shown), limit)}", True) for shown, _ in _problems(turn)]
        if turn.played:
            said = self.text(turn.spoken)
            lines.append(
                _Line(2, f"assistant said: {_quote(said, _REPLY_CHARS)}" if said else "assistant said nothing")
            )
        if turn.tool_calls:
            lines.append(_Line(2, f"tool calls: {', '.join(turn.tool_calls)}"))
        if turn.exchanges:
            lines += self.request(turn.exchanges[-1], len(turn.exchanges))
        return lines

    def request(self, judged: ExchangeResult, count: int) -> list[_Line]:
        """URL, answer, message count and the last user message; the whole body when `full`."""
        from mock_vapi.exchange import Outcome

        exchange = judged.exchange
        request = exchange.request
        answer = f"HTTP {exchange.status}" if exchange.status is not None else "no answer"
        if exchange.outcome is not Outcome.COMPLETE:
            answer += f", {exchange.outcome.value}: {_cut(self.text(exchange.error or ''), _QUOTE_CHARS)}"
        which = f"request {count} of {count}" if count > 1 else "request"
        lines = [_Line(2, f"{which}: {request.method} {self.redactor.text(request.url)} -> {answer}")]
        body = request.json_body
        messages = body.get("messages") if body is not None else None
        if isinstance(messages, list):
            heard = _last_user_message(messages)
            last = (
                "no user message"
                if heard is None
                else f"the last user message: {_quote(self.text(heard), _QUOTE_CHARS)}"
            )
            lines.append(_Line(4, f"{len(messages)} messages; {last}"))
        if not self.full:
            return [*lines, _Line(4, "(pytest -vv shows the whole body)")]
        if body is None:
            return [
                *lines,
                _Line(4, f"body ({len(request.body)} bytes, not JSON):"),
                _Line(6, self.text(request.body.decode("utf-8", "replace"))),
            ]
        shown = json.dumps(self.redactor.deep(dict(body)), indent=2, ensure_ascii=False).splitlines()
        return [*lines, _Line(4, "body:")] + [_Line(6 + min(len(r) - len(r.lstrip()), 40), r.lstrip()) for r in shown]

    def transcript(self, result: ScenarioResult) -> list[_Line]:
        """The end of the call's transcript, one row per line; all of it, wrapped, when `full`."""
        entries = result.transcript if self.full else result.transcript[-_TRANSCRIPT_LINES:]
        head = "transcript:"
        if len(entries) < len(result.transcript):
            head = f"transcript, the last {len(entries)} of {len(result.transcript)} lines (-vv shows all):"
        lines = [
            _Line(max(2, 13 - len(role)), f"{role}: {_cut(self.text(text), _REPLY_CHARS)}", cut=not self.full)
            for role, text in entries
        ]
        return [_Line(0, head), *lines]


def describe_failure(
    results: Sequence[ScenarioResult], api_key: str | None, path: Path, *, full: bool = False
) -> ScenarioFailureRepr:
    """The report of a failed scenario; `full` (pytest -vv) adds the whole request body. Secrets redacted."""
    from harness.reporting import Redactor

    report = _FailureReport(results, Redactor([api_key]), full=full)
    return ScenarioFailureRepr(report.lines(), report.reason(), path)


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
        from mock_vapi.scenarios.loader import load_document, load_file

        scenario = load_document(dict(source), "<dict>") if isinstance(source, Mapping) else load_file(Path(source))
        return _play(request.config, [scenario])

    return play


# The Vapi model fields `vapi_turn` takes as keywords (CustomLLMModel.from_vapi reads and checks them).
_MODEL_FIELDS = ("model", "tools", "metadataSendMode", "temperature", "maxTokens", "headers", "timeoutSeconds")
_NOT_ARGUMENTS = {
    "url": "the endpoint is --vapi-url (or the built-in one)",
    "provider": "it is always 'custom-llm'",
    "api_key": "the key is --vapi-api-key",
}
_MESSAGES = "expected a list of {'role': ..., 'content': ...} dicts"


def _check_messages(messages: Any) -> None:
    __tracebackhide__ = True
    if isinstance(messages, str | bytes | Mapping) or not isinstance(messages, Sequence):
        hint = " (one message: put it in a list)" if isinstance(messages, Mapping) else ""
        raise TypeError(f"vapi_turn(messages=...): {_MESSAGES}, got {_kind(messages)}{hint}")
    if not messages:
        raise ValueError("vapi_turn(messages=...): the list is empty; Vapi sends at least one message")
    for i, message in enumerate(messages):
        if not isinstance(message, Mapping):
            raise TypeError(f"vapi_turn(messages=...): {_MESSAGES}, got {_kind(message)} at messages[{i}]")
        if "role" not in message:
            raise ValueError(
                f"vapi_turn(messages=...): messages[{i}] has no 'role' ('system', 'user', 'assistant' or 'tool'): "
                f"{_cut(repr(dict(message)), 80)}"
            )
        if not isinstance(message["role"], str) or not message["role"]:
            raise ValueError(
                f"vapi_turn(messages=...): messages[{i}]['role'] must be a string such as 'user', "
                f"got {_kind(message['role'])}"
            )


def _check_fields(stream: Any, fields: Mapping[str, Any]) -> None:
    __tracebackhide__ = True
    from mock_vapi.errors import did_you_mean

    if not isinstance(stream, bool):
        raise TypeError(f"vapi_turn(stream=...): expected True or False, got {_kind(stream)}")
    for name in fields:
        if name in _NOT_ARGUMENTS:
            raise TypeError(f"vapi_turn({name}=...): not an argument: {_NOT_ARGUMENTS[name]}")
        if name not in _MODEL_FIELDS:
            hint = did_you_mean(name, ("messages", "stream", *_MODEL_FIELDS))
            raise TypeError(
                f"vapi_turn({name}=...): unknown argument.{hint} vapi_turn takes messages, stream and the "
                f"Vapi model fields {', '.join(_MODEL_FIELDS)}"
            )
    tools = fields.get("tools") or []
    if isinstance(tools, str | bytes | Mapping) or not isinstance(tools, Sequence):
        raise TypeError(
            f"vapi_turn(tools=...): expected a list of Vapi tools ({{'type': 'function', ...}}), got {_kind(tools)}"
        )


def _argument_path(match: re.Match[str]) -> str:
    path, name = match[1], match[2]
    return f"vapi_turn({name}=...): " + (f"{path}: " if path != name else "")


def _loop_running() -> bool:
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return False
    return True


class VapiTurn:
    """The `vapi_turn` fixture: send one turn the way Vapi sends it, and judge the reply with every check.

    `vapi_turn(messages, *, stream=True, **model_fields)`:

    Args:
        messages: the whole history Vapi sends for the turn, system prompt first: a list of
            `{"role": ..., "content": ...}` dicts. `role` is required; other keys (`tool_calls`, `tool_call_id`,
            `name`) are sent as they are.
        stream: `True` (what Vapi sends) asks for a stream; `False` for one JSON completion.
        model: the model name sent in the body (default `"vapi-harness-probe"`).
        tools: Vapi tools of the assistant (`function`, `endCall`, `transferCall`, `dtmf`), sent as OpenAI tools.
        metadataSendMode: `"variable"` (the default: the call, phone number and customer objects and
            `metadata`), `"destructured"` (metadata as top-level fields) or `"off"`.
        temperature: 0 to 2 (default 0.5). maxTokens: 50 to 10000, sent as `max_tokens` (default 250).
        headers: extra request headers (`model.headers`); never `Authorization`, which is `--vapi-api-key`.
        timeoutSeconds: how long Vapi waits for the first token (default `--vapi-timeout-s`).

    Returns an `ExchangeResult`: `.exchange` (status, text, events, the request sent), `.failed` (failed checks,
    errors first), `.findings` and `.metrics` (`ttft_ms`, `first_sentence_ms`, ...).

    Wrong arguments raise `TypeError` or `ValueError` at the call, naming the argument and what it takes. A turn
    cancelled before its reply ended fails the test: nothing was judged. The URL is `--vapi-url`.
    """

    def __init__(self, config: pytest.Config) -> None:
        self.config = config

    def __call__(self, messages: Sequence[Mapping[str, Any]], *, stream: bool = True, **fields: Any) -> ExchangeResult:
        """Send the turn and judge it (see the class)."""
        __tracebackhide__ = True
        from harness.judging import judge_exchange
        from harness.suite import Probe
        from mock_vapi.exchange import Exchange, Outcome
        from mock_vapi.reader import ReadLimits

        _check_messages(messages)
        _check_fields(stream, fields)
        if _loop_running():
            raise RuntimeError("vapi_turn: called inside a running event loop; call it from a plain `def` test")
        built = self._request(messages, stream, fields)
        exchange = Exchange(built, time.perf_counter())
        try:
            asyncio.run(self._read(exchange, ReadLimits(deadline_s=built.timeout_s + 10)))
        except asyncio.CancelledError:
            exchange.outcome = Outcome.CANCELLED
        if exchange.outcome is Outcome.CANCELLED:
            pytest.fail("vapi_turn: the turn was cancelled before its reply ended; nothing was judged", pytrace=False)
        probe = Probe(name="vapi_turn", description="a turn sent by the vapi_turn fixture", request=built)
        return judge_exchange(probe, exchange)

    def _request(self, messages: Sequence[Mapping[str, Any]], stream: bool, fields: Mapping[str, Any]) -> VapiRequest:
        __tracebackhide__ = True
        from mock_vapi import CustomLLMModel, InvalidModelConfig, build_request

        config = self.config
        vapi_model = {"model": "vapi-harness-probe", "timeoutSeconds": config.getoption("--vapi-timeout-s")}
        vapi_model |= {**fields, "provider": "custom-llm", "url": _endpoint(config)}
        try:
            model = CustomLLMModel.from_vapi(vapi_model, where="vapi_turn")
        except (
            InvalidModelConfig
        ) as exc:  # "vapi_turn.tools[0].type: ..." -> "vapi_turn(tools=...): tools[0].type: ..."
            raise ValueError(re.sub(r"^vapi_turn\.((\w+)\S*): ", _argument_path, str(exc))) from None
        try:
            return build_request(model, messages, api_key=config.getoption("--vapi-api-key"), stream=stream)
        except (TypeError, ValueError) as exc:  # json.dumps: a value that is not JSON
            raise TypeError(f"vapi_turn: the messages or tools are not JSON: {exc}") from None

    @staticmethod
    async def _read(exchange: Exchange, limits: ReadLimits) -> None:
        from mock_vapi.reader import new_session, read_into

        async with new_session() as session:
            await read_into(session, exchange, limits)


@pytest.fixture
def vapi_turn(request: pytest.FixtureRequest) -> VapiTurn:
    """Send one Vapi turn and judge it with every check: `vapi_turn(messages, *, stream=True, **model_fields)`.

    `result = vapi_turn([{"role": "user", "content": "Hi"}], tools=[...], metadataSendMode="off")`;
    `result.exchange.text`, `result.failed` (failed checks), `result.metrics["ttft_ms"]`. Arguments: `VapiTurn`.
    """
    return VapiTurn(request.config)


_EXPLORE_DB = Path(".vapi-harness") / "explore-db"  # under pytest's rootdir, as Hypothesis keeps `.hypothesis`


class VapiExplore:
    """The `vapi_explore` fixture: explore the endpoint under test with generated Vapi conversations, as
    `vapi-harness explore` does, inside a test of your own suite.

    `vapi_explore(*, max_examples=50, seed=0, max_run_s=120, concurrency=1, strict=False)`:

    Args:
        max_examples: conversations to send; no round of generation starts past it (shrinking may send more).
        seed: the generator's seed; the same seed draws the same conversations.
        max_run_s: a bound on the whole exploration; past it the test fails as cut short.
        concurrency: requests in flight at once.
        strict: warnings fail too.

    Returns the `ExploreResult` when nothing failed. Otherwise the test fails with each distinct failure's
    smallest request (`-vv` shows its whole body, secrets redacted) and the path of its reproducer, a line
    `vapi-harness check --replay` sends again. Earlier failures are kept in `.vapi-harness/explore-db` under
    the rootdir and tried first on the next run.
    """

    def __init__(self, config: pytest.Config, out_dir: Path) -> None:
        self.config = config
        self.out_dir = out_dir

    def __call__(
        self,
        *,
        max_examples: int = 50,
        seed: int = 0,
        max_run_s: float = 120.0,
        concurrency: int = 1,
        strict: bool = False,
    ) -> Any:
        """Explore and judge (see the class)."""
        __tracebackhide__ = True
        from datetime import UTC, datetime

        from harness.explore.reproducer import write_reproducers
        from harness.explore.results import ExploreInfo
        from harness.explore.runner import Explorer, ExploreSettings
        from harness.reporting import Redactor

        for name, value, least in (
            ("max_examples", max_examples, 1),
            ("concurrency", concurrency, 1),
            ("seed", seed, 0),
        ):
            if isinstance(value, bool) or not isinstance(value, int) or value < least:
                raise ValueError(f"vapi_explore({name}=...): expected a whole number >= {least}, got {_kind(value)}")
        if isinstance(max_run_s, bool) or not isinstance(max_run_s, int | float) or not max_run_s > 0:
            raise ValueError(f"vapi_explore(max_run_s=...): expected a number of seconds > 0, got {_kind(max_run_s)}")
        if _loop_running():
            raise RuntimeError("vapi_explore: called inside a running event loop; call it from a plain `def` test")
        config = self.config
        api_key = config.getoption("--vapi-api-key")
        redactor = Redactor([api_key])
        settings = ExploreSettings(
            max_examples=max_examples,
            max_run_s=max_run_s,
            concurrency=concurrency,
            strict=strict,
            run=_settings(config),
            database=config.rootpath / _EXPLORE_DB,
        )
        url = _endpoint(config)
        info = ExploreInfo(
            run_id=self.out_dir.name,
            url=url,
            builtin=not config.getoption("--vapi-url", default=None),
            authenticated=bool(api_key),
            started_at=datetime.now(UTC),
            seed=seed,
            max_examples=max_examples,
            max_run_s=max_run_s,
            concurrency=concurrency,
            strict=strict,
            database=str(settings.database),
        )
        explorer = Explorer(
            info,
            settings,
            lambda event: None,
            api_key=api_key,
            finish=lambda found: write_reproducers(found, self.out_dir / "reproducers", redactor),
        )
        found = explorer.explore()
        if found.failures or found.interrupted or found.stopped_early:
            full = int(config.getoption("verbose")) >= 2
            pytest.fail(describe_exploration(found, redactor, full=full), pytrace=False)
        return found


def describe_exploration(found: Any, redactor: Redactor, *, full: bool = False) -> str:
    """A failed exploration as a test failure: a first line for the short summary, then per failure its check,
    what broke, the smallest request and its reproducer; `full` (pytest -vv) adds each request's whole body."""
    failures = found.failures_first
    cut = found.interrupted or found.stopped_early
    head = (
        f"vapi_explore: {len(failures)} distinct failure(s) in {found.examples} examples (seed {found.info.seed})"
        if failures
        else f"vapi_explore: the exploration was cut short: {redactor.text(cut or '')}"
    )
    lines = [head]
    for failure in failures:
        request = failure.result.exchange.request
        facts = failure.summary
        last = facts.get("lastUserMessage")
        heard = "no user message" if last is None else f"the last user message: {_quote(redactor.text(last), 80)}"
        detail = failure.finding.detail.strip().splitlines()
        lines += [
            f"✗ {failure.key.check}: {_cut(' '.join(redactor.text(failure.finding.title).split()), _REASON_CHARS)}",
            *([f"  {_cut(redactor.text(detail[0]), _QUOTE_CHARS)}"] if detail else []),
            f"  smallest request (after {failure.shrink_steps} shrink steps, {failure.examples} examples failed "
            f"this way): {request.method} {redactor.text(request.url)}, {facts.get('messages')} messages, "
            f"{'stream' if request.stream else 'stream: false'}, {len(request.body)} bytes; {heard}",
        ]
        if failure.reproducer is not None:
            lines.append(f"  reproducer: {failure.reproducer} (vapi-harness check --url URL --replay it)")
        if full:
            body = dict(request.json_body) if request.json_body is not None else request.body.decode("utf-8", "replace")
            shown = json.dumps(redactor.deep(body), indent=2, ensure_ascii=False)
            lines += ["  body:", textwrap.indent(shown, "    ")]
    if failures and not full:
        lines.append("(pytest -vv shows each request's whole body)")
    if failures and cut:
        lines.append(f"the exploration was cut short: {redactor.text(cut)}")
    return "\n".join(row for line in "\n".join(lines).splitlines() for row in _wrapped(line))


def _wrapped(line: str) -> list[str]:
    """A line of a failure message in rows of at most `_WIDTH` columns, continued one indent deeper."""
    if len(line) <= _WIDTH:
        return [line]
    pad = " " * min(len(line) - len(line.lstrip()), 40)
    return textwrap.wrap(
        line.lstrip(), _WIDTH, initial_indent=pad, subsequent_indent=pad + "  ", break_on_hyphens=False
    )


@pytest.fixture
def vapi_explore(request: pytest.FixtureRequest, tmp_path: Path) -> VapiExplore:
    """Explore the endpoint with generated Vapi conversations: `vapi_explore(max_examples=50, seed=0)`.

    The test fails with each distinct failure's smallest request and its reproducer. Arguments: `VapiExplore`.
    """
    return VapiExplore(request.config, tmp_path)

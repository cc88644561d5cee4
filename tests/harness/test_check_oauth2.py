"""`check` with an OAuth2 plan: the probes carry a token fetched from a real token server on loopback, reused
while it is valid and fetched again after; neither the token nor the client secret reaches any output."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from harness.fake_llm import FakeLLMConfig, create_app
from harness.judging import RunSettings
from harness.protocol import REDACTED, Redactor
from harness.results import ExchangeFinished, RunFinished, RunInfo
from harness.runner import Runner, TokenAuth
from harness.servers import ServerThread
from harness.suite import Target, default_probes
from mock_vapi import CustomLLMModel
from mock_vapi.oauth2 import OAuth2Plan, TokenError, TokenSource
from tests.harness.gate import Gate
from tests.token_server import TokenServer

pytestmark = pytest.mark.slow

FAST = ("--timeout-s", "2", "--deadline-s", "4", "--close-grace-s", "0.5", "--barge-in-pause-ms", "0")
SECRET = TokenServer().client_secret
WRONG, MISSING = "Bearer wrong-key-0000", None  # what the wrong-key and missing-key probes send


def granted(server: TokenServer) -> Callable[[], set[str]]:
    """The Authorization values a custom LLM behind this token server accepts: the tokens granted so far."""
    return lambda: {f"Bearer token-{n}" for n in range(1, server.granted + 1)}


def gated(serve: Callable[[Any], ServerThread], **settings: Any) -> tuple[Gate, str]:
    gate = Gate(create_app(FakeLLMConfig(ttft_ms=2.0, chunk_delay_ms=2.0)), **settings)
    return gate, f"{serve(gate).url}/v1"


def oauth2_args(url: str, token_url: str, *extra: str) -> list[str]:
    return ["check", "--url", url, "--oauth2-token-url", token_url, "--oauth2-client-id", "vapi-client", *FAST, *extra]


def everything_written(result: Any, tmp_path: Path) -> str:
    """stdout, stderr and every report file of the run."""
    files = [p.read_text(encoding="utf-8") for p in tmp_path.rglob("*") if p.is_file()]
    return "\n".join([result.out, result.err, *files])


def test_the_probes_carry_the_fetched_token_reused_while_valid(
    serve: Callable[[Any], ServerThread],
    tokens: Callable[..., tuple[TokenServer, str]],
    run_cli: Callable[..., Any],
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
) -> None:
    token_server, token_url = tokens(expires_in=3600)
    gate, url = gated(serve, accepted=granted(token_server))
    monkeypatch.setenv("VAPI_HARNESS_OAUTH2_CLIENT_SECRET", SECRET)
    result = run_cli(*oauth2_args(url, token_url, "--oauth2-scope", "llm.invoke", "--repeat", "2"))
    assert result.code == 0, result.out
    assert token_server.granted == 1 and len(token_server.requests) == 1
    form = token_server.requests[0]["form"]
    assert form == {"grant_type": "client_credentials", "client_id": "vapi-client", "client_secret": SECRET,
                    "scope": "llm.invoke"}  # fmt: skip
    # Every probe sent token-1, but the two that send a wrong key and none on purpose (once per repeat).
    assert gate.authorization.count("Bearer token-1") == len(gate.authorization) - 4
    assert gate.authorization.count(WRONG) == 2 and gate.authorization.count(MISSING) == 2
    assert result.check("rejects_wrong_api_key")["status"] == "passed"
    assert result.report["target"]["authenticated"] is True
    written = everything_written(result, tmp_path)
    assert "token-1" not in written and SECRET not in written


def test_basic_client_auth_sends_the_secret_in_the_header_not_the_form(
    serve: Callable[[Any], ServerThread],
    tokens: Callable[..., tuple[TokenServer, str]],
    run_cli: Callable[..., Any],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    token_server, token_url = tokens()
    gate, url = gated(serve, accepted=granted(token_server))
    monkeypatch.setenv("VAPI_HARNESS_OAUTH2_CLIENT_SECRET", SECRET)
    result = run_cli(*oauth2_args(url, token_url, "--oauth2-client-auth", "basic"))
    assert result.code == 0, result.out
    assert token_server.requests[0]["basic"] is True
    assert token_server.requests[0]["form"] == {"grant_type": "client_credentials"}
    assert "Bearer token-1" in gate.authorization


def test_a_token_echoed_by_the_endpoint_is_redacted_everywhere(
    serve: Callable[[Any], ServerThread],
    tokens: Callable[..., tuple[TokenServer, str]],
    run_cli: Callable[..., Any],
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
) -> None:
    _, token_url = tokens()
    _, url = gated(serve, echo_credential=True)  # answers 500 quoting the Authorization it got
    monkeypatch.setenv("VAPI_HARNESS_OAUTH2_CLIENT_SECRET", SECRET)
    result = run_cli(*oauth2_args(url, token_url, "--markdown", str(tmp_path / "summary.md"), "-v"))
    assert result.code == 1
    details = [f["detail"] for f in result.check("status_is_success")["failures"]]
    assert any(f"credential Bearer {REDACTED}" in d for d in details)
    written = everything_written(result, tmp_path)
    assert "token-1" not in written and SECRET not in written


def test_an_expired_token_is_fetched_again(
    serve: Callable[[Any], ServerThread],
    tokens: Callable[..., tuple[TokenServer, str]],
    run_cli: Callable[..., Any],
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
) -> None:
    # A token that lives 1 s is inside TokenSource's refresh margin: every probe asks for a fresh one.
    token_server, token_url = tokens(expires_in=1)
    gate, url = gated(serve, accepted=granted(token_server))
    monkeypatch.setenv("VAPI_HARNESS_OAUTH2_CLIENT_SECRET", SECRET)
    result = run_cli(*oauth2_args(url, token_url))
    assert result.code == 0, result.out
    sent = [a for a in gate.authorization if a not in (WRONG, MISSING)]
    # One token fetched before the run (the plan is tried first), then one per probe that carries it (calls
    # overlap, so the tokens may reach the server in another order than they were fetched).
    assert sorted(sent, key=lambda a: int(a.rsplit("-", 1)[1])) == [
        f"Bearer token-{n}" for n in range(2, len(sent) + 2)
    ]
    assert token_server.granted == len(sent) + 1
    written = everything_written(result, tmp_path)
    assert not any(f"token-{n}" in written for n in range(1, token_server.granted + 1))


def test_a_plan_that_gives_no_token_is_bad_input_before_any_probe(
    serve: Callable[[Any], ServerThread],
    tokens: Callable[..., tuple[TokenServer, str]],
    run_cli: Callable[..., Any],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    _, token_url = tokens()
    gate, url = gated(serve)
    monkeypatch.setenv("VAPI_HARNESS_OAUTH2_CLIENT_SECRET", "not-the-secret-0000")
    result = run_cli(*oauth2_args(url, token_url))
    assert result.code == 2
    assert result.err.strip().splitlines() == [
        f"vapi-harness: error: --oauth2-token-url: the token endpoint {token_url} answered HTTP 401 (invalid_client)"
    ]
    assert gate.authorization == [] and result.report is None


def test_a_token_endpoint_failing_mid_run_stops_it_with_reports(
    serve: Callable[[Any], ServerThread],
    tokens: Callable[..., tuple[TokenServer, str]],
    run_cli: Callable[..., Any],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    token_server, token_url = tokens(expires_in=1)  # refreshed for every probe (see above)

    def break_token_server() -> None:
        token_server.status = 503

    gate, url = gated(serve, accepted=granted(token_server), before=break_token_server)
    monkeypatch.setenv("VAPI_HARNESS_OAUTH2_CLIENT_SECRET", SECRET)
    result = run_cli(*oauth2_args(url, token_url))
    assert result.code == 1
    assert len(gate.authorization) == 1  # the first probe went out; the second found no token
    assert result.report["stopped_early"] == (
        f"no OAuth2 token: the token endpoint {token_url} answered HTTP 503 (temporarily_unavailable); "
        "the remaining probes were not sent"
    )
    assert [e["probe"] for e in result.report["exchanges"]] == ["stream_basic"]


@pytest.mark.parametrize(
    ("args", "env", "message"),
    [
        (["--api-key", "sk-0000", "--oauth2-token-url", "http://127.0.0.1:9/t"], {}, "cannot be combined"),
        (["--oauth2-token-url", "ftp://x/t", "--oauth2-client-id", "c"], {}, "'ftp://x/t' is not an http(s) URL"),
        (["--oauth2-token-url", "http://127.0.0.1:9/t"], {}, "--oauth2-token-url needs --oauth2-client-id"),
        (["--oauth2-token-url", "http://127.0.0.1:9/t", "--oauth2-client-id", "c"], {},
         "needs the client secret: set VAPI_HARNESS_OAUTH2_CLIENT_SECRET"),
        (["--oauth2-client-id", "c"], {},
         "--oauth2-client-id (or VAPI_HARNESS_OAUTH2_CLIENT_ID) needs --oauth2-token-url"),
        ([], {"VAPI_HARNESS_OAUTH2_CLIENT_SECRET": SECRET},
         "--oauth2-client-secret (or VAPI_HARNESS_OAUTH2_CLIENT_SECRET) needs --oauth2-token-url"),
        (["--oauth2-token-url", "http://127.0.0.1:9/t", "--oauth2-client-id", "c", "--oauth2-client-auth", "form"],
         {}, "'form' is not one of body, basic"),
    ],
    ids=["with-api-key", "not-http", "no-client-id", "no-secret", "id-without-url", "secret-without-url", "auth"],
)  # fmt: skip
def test_oauth2_bad_input_exits_2(
    args: list[str], env: dict[str, str], message: str, run_cli: Callable[..., Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    result = run_cli("check", "--url", "http://127.0.0.1:9/v1", *args)
    assert result.code == 2
    assert message in result.err and len(result.err.strip().splitlines()) == 1
    assert SECRET not in result.err


def test_oauth2_needs_a_url(run_cli: Callable[..., Any], monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("VAPI_HARNESS_OAUTH2_CLIENT_SECRET", SECRET)
    result = run_cli("check", "--oauth2-token-url", "http://127.0.0.1:9/t", "--oauth2-client-id", "c")
    assert result.code == 2
    assert "--oauth2-token-url needs --url" in result.err


class _Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_the_runner_reuses_a_token_until_it_expires_then_fetches_another(
    serve: Callable[[Any], ServerThread], tokens: Callable[..., tuple[TokenServer, str]]
) -> None:
    token_server, token_url = tokens(expires_in=60)
    clock = _Clock()

    def a_probe_takes_20_s() -> None:
        clock.now += 20

    gate, url = gated(serve, accepted=granted(token_server), before=a_probe_takes_20_s)
    model = CustomLLMModel(url=url, model="m", timeout_s=2.0)
    probes = default_probes(Target(model, token_auth=True), barge_in_pause_ms=0)[:5]
    info = RunInfo("r", url, "m", "variable", False, True, 2.0, 1, False, tuple(p.name for p in probes),
                   datetime.now(UTC))  # fmt: skip
    redactor = Redactor()
    plan = OAuth2Plan(token_url, token_server.client_id, token_server.client_secret)
    # One probe at a time, so that each request moves the clock on before the next fetches its token.
    settings = RunSettings(max_in_flight=1)
    runner = Runner(info, probes, settings, auth=TokenAuth(TokenSource(plan, clock=clock), redactor))

    async def drive() -> list[Any]:
        return [event async for event in runner.events()]

    events = asyncio.run(drive())
    assert isinstance(events[-1], RunFinished) and runner.run.passed
    assert sum(isinstance(e, ExchangeFinished) for e in events) == 5
    # Sent at 0, 20, 40 s with token-1 (valid until 60, refreshed 5 s early), at 60 and 80 s with token-2.
    assert gate.authorization == ["Bearer token-1"] * 3 + ["Bearer token-2"] * 2
    assert redactor.text("token-1 token-2") == f"{REDACTED} {REDACTED}"


def test_a_token_error_before_the_first_probe_leaves_the_runner_before_it_starts(
    tokens: Callable[..., tuple[TokenServer, str]],
) -> None:
    token_server, token_url = tokens(status=500)
    model = CustomLLMModel(url="http://127.0.0.1:9/v1", model="m")
    probes = default_probes(Target(model, token_auth=True))
    info = RunInfo("r", model.url, "m", "variable", False, True, 2.0, 1, False, (), datetime.now(UTC))
    plan = OAuth2Plan(token_url, token_server.client_id, token_server.client_secret)
    runner = Runner(info, probes, RunSettings(), auth=TokenAuth(TokenSource(plan), Redactor()))

    async def drive() -> list[Any]:
        return [event async for event in runner.events()]

    with pytest.raises(TokenError, match="answered HTTP 500"):
        asyncio.run(drive())
    assert runner.run.results == []


def test_scenarios_are_played_with_the_token(
    serve: Callable[[Any], ServerThread],
    tokens: Callable[..., tuple[TokenServer, str]],
    run_cli: Callable[..., Any],
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
) -> None:
    scenario = tmp_path / "hello.yaml"
    scenario.write_text("name: hello\nturns:\n  - user: Hello\n  - user: Thanks, bye\n", encoding="utf-8")
    token_server, token_url = tokens()
    gate, url = gated(serve, accepted=granted(token_server))
    monkeypatch.setenv("VAPI_HARNESS_OAUTH2_CLIENT_SECRET", SECRET)
    result = run_cli(*oauth2_args(url, token_url, "--suite", str(scenario)))
    assert result.code == 0, result.out
    assert gate.authorization == ["Bearer token-1", "Bearer token-1"]
    assert "token-1" not in everything_written(result, tmp_path)

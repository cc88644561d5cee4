"""`check` against a real third-party server: LiteLLM's proxy in front of the fake LLM, without and with a master key.

LiteLLM lives in a virtualenv of its own, `.venv-litellm`, made by `scripts/litellm_venv` (which `scripts/check`
runs); `VAPI_HARNESS_LITELLM` may name another `litellm` executable. It runs offline, on loopback only.
"""

from __future__ import annotations

import json
import os
import secrets
import signal
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
import yaml

from harness.fake_llm import FakeLLMConfig, create_app
from harness.servers import ServerThread, base_url, free_port, serve_in_thread
from tests.conftest import CliRun

pytestmark = pytest.mark.slow

REPO = Path(__file__).resolve().parents[2]
LITELLM_ENV_VAR = "VAPI_HARNESS_LITELLM"
MODEL = "vapi-harness-probe"  # the default `check --model`: LiteLLM routes only the model names it is configured with
UPSTREAM_KEY = "upstream-dummy-key"  # what LiteLLM must send the fake LLM, which refuses any other
HOST = "127.0.0.1"
STARTUP_TIMEOUT_S = 120.0
POLL_INTERVAL_S = 0.2
STOP_TIMEOUT_S = 10.0
STDERR_TAIL_LINES = 40

# Keep LiteLLM off the network: the bundled model cost map and other catalogues instead of their remote copies,
# no telemetry. A master key, a database or a cache from the caller's environment is not passed on.
OFFLINE_ENV = {
    "LITELLM_LOCAL_MODEL_COST_MAP": "True",
    "LITELLM_LOCAL_ANTHROPIC_BETA_HEADERS": "True",
    "LITELLM_LOCAL_BLOG_POSTS": "True",
    "LITELLM_LOCAL_POLICY_TEMPLATES": "True",
    "LITELLM_LOCAL_AUTOROUTER_PRESETS": "True",
    "LITELLM_TELEMETRY": "False",
    "NO_PROXY": "127.0.0.1,localhost",
    "no_proxy": "127.0.0.1,localhost",
}
DROPPED_ENV_PREFIXES = ("LITELLM_", "DATABASE_URL", "DIRECT_URL", "REDIS_", "OPENAI_")


@pytest.fixture(scope="module")
def litellm_executable() -> Path:
    """LiteLLM's `litellm` command; missing, it fails the run under CI and skips the module elsewhere."""
    override = os.environ.get(LITELLM_ENV_VAR)
    executable = Path(override) if override else REPO / ".venv-litellm" / "bin" / "litellm"
    if not os.access(executable, os.X_OK):
        reason = f"No LiteLLM executable at {executable}: run scripts/litellm_venv (or set {LITELLM_ENV_VAR})"
        if os.environ.get("CI", "").lower() in ("true", "1"):
            pytest.fail(reason)
        pytest.skip(reason)
    return executable


def _env(home: Path, permit_no_master_key: bool) -> dict[str, str]:
    env = {name: value for name, value in os.environ.items() if not name.startswith(DROPPED_ENV_PREFIXES)}
    env.update(OFFLINE_ENV, HOME=str(home))
    if permit_no_master_key:
        # LiteLLM refuses to start without a master key unless told this is local development.
        env["LITELLM_DANGEROUSLY_PERMIT_WEAK_OR_UNSET_MASTER_KEY"] = "true"
    return env


def _config(upstream: ServerThread, master_key: str | None) -> str:
    """LiteLLM's config: the check's model routed to the fake LLM as an OpenAI-compatible upstream."""
    config: dict[str, Any] = {
        "model_list": [
            {
                "model_name": MODEL,
                "litellm_params": {
                    "model": "openai/fake-llm",
                    "api_base": f"{upstream.url}/v1",
                    "api_key": UPSTREAM_KEY,
                },
            }
        ]
    }
    if master_key is not None:
        config["general_settings"] = {"master_key": master_key}
    return yaml.safe_dump(config, sort_keys=False)


def _tail(path: Path) -> str:
    lines = path.read_text(errors="replace").splitlines()[-STDERR_TAIL_LINES:]
    return "\n".join(lines) or "(nothing)"


def _ready(url: str) -> bool:
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    try:
        with opener.open(url, timeout=2) as response:
            status: int = response.status
            return status == 200
    except (urllib.error.URLError, OSError):
        return False


def _stop(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is not None:
        return
    try:
        os.killpg(process.pid, signal.SIGTERM)
        process.wait(STOP_TIMEOUT_S)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait(STOP_TIMEOUT_S)
    except ProcessLookupError:
        process.wait(STOP_TIMEOUT_S)


# The model names `explore`'s generator draws (harness.explore.strategies.models), besides check's own.
EXPLORE_MODELS = ("gpt-4o", "acme-voice-1", "llama-3.1-8b-instruct")


def _explore_config(upstream: ServerThread) -> str:
    """LiteLLM's config for `explore`: each model name the generator draws routed to the fake LLM."""
    route = {"model": "openai/fake-llm", "api_base": f"{upstream.url}/v1", "api_key": UPSTREAM_KEY}
    models = [{"model_name": name, "litellm_params": route} for name in (MODEL, *EXPLORE_MODELS)]
    return yaml.safe_dump({"model_list": models}, sort_keys=False)


@contextmanager
def _litellm(
    executable: Path,
    workdir: Path,
    upstream: ServerThread,
    master_key: str | None,
    config_text: str | None = None,
    extra_env: dict[str, str] | None = None,
) -> Iterator[str]:
    """Run LiteLLM's proxy in front of `upstream`; yields its base URL once it reports ready."""
    config = workdir / "litellm.yaml"
    config.write_text(config_text if config_text is not None else _config(upstream, master_key))
    home = workdir / "home"
    home.mkdir()
    port = free_port(HOST)
    url = base_url(HOST, port)
    argv = [str(executable), "--config", str(config), "--host", HOST, "--port", str(port), "--telemetry", "False"]
    stderr_path = workdir / "litellm.stderr"
    with stderr_path.open("wb") as stderr, (workdir / "litellm.stdout").open("wb") as stdout:
        # Its own session, so that stopping it also stops any worker it forks.
        process = subprocess.Popen(
            argv,
            stdin=subprocess.DEVNULL,
            stdout=stdout,
            stderr=stderr,
            cwd=workdir,
            env={**_env(home, permit_no_master_key=master_key is None), **(extra_env or {})},
            start_new_session=True,
        )
        try:
            ready = False
            deadline = time.monotonic() + STARTUP_TIMEOUT_S
            for _ in range(int(STARTUP_TIMEOUT_S / POLL_INTERVAL_S)):
                ready = process.poll() is None and _ready(f"{url}/health/readiness")
                if ready or process.poll() is not None or time.monotonic() > deadline:
                    break
                time.sleep(POLL_INTERVAL_S)
            if not ready:
                problem = (
                    f"did not become ready on {url} within {STARTUP_TIMEOUT_S:.0f} s"
                    if process.poll() is None
                    else f"exited with status {process.returncode} before it was ready on {url}"
                )
                pytest.fail(f"LiteLLM {problem}; its stderr ends:\n{_tail(stderr_path)}")
            yield url
        finally:
            _stop(process)


@pytest.fixture(scope="module")
def upstream() -> Iterator[ServerThread]:
    """The fake LLM behind LiteLLM, fast and fault-free, requiring LiteLLM's upstream key."""
    config = FakeLLMConfig(ttft_ms=2.0, chunk_delay_ms=2.0, api_key=UPSTREAM_KEY)
    with serve_in_thread(create_app(config)) as server:
        yield server


@pytest.fixture(scope="module")
def litellm_open(
    litellm_executable: Path, tmp_path_factory: pytest.TempPathFactory, upstream: ServerThread
) -> Iterator[str]:
    """LiteLLM without a master key: every caller is let through."""
    with _litellm(litellm_executable, tmp_path_factory.mktemp("litellm-open"), upstream, master_key=None) as url:
        yield url


@pytest.fixture(scope="module")
def master_key() -> str:
    """A fresh master key, strong enough for LiteLLM to start with it."""
    return f"sk-{secrets.token_hex(24)}"


@pytest.fixture(scope="module")
def litellm_keyed(
    litellm_executable: Path, tmp_path_factory: pytest.TempPathFactory, upstream: ServerThread, master_key: str
) -> Iterator[str]:
    """LiteLLM with a master key: callers must send it as a bearer token."""
    with _litellm(litellm_executable, tmp_path_factory.mktemp("litellm-keyed"), upstream, master_key) as url:
        yield url


def _outcome(run: CliRun) -> str:
    """What went wrong, from the JSON report: each failed check with its failures and their severities."""
    if run.report is None:
        return f"exit {run.code}, no report\n{run.out}\n{run.err}"
    lines = [f"exit {run.code}: {run.report['summary']}"]
    for check in run.report["checks"]:
        if check["status"] == "failed":
            lines.append(f"{check['id']}:")
            lines += [f"  {f['severity']} {f['probe']}: {f['title']} -- {f['detail']}" for f in check["failures"]]
    return "\n".join(lines)


def test_check_passes_without_master_key(
    litellm_open: str, run_cli: Callable[..., CliRun], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("VAPI_HARNESS_API_KEY", raising=False)
    run = run_cli("check", "--url", f"{litellm_open}/v1")
    code = run.code
    assert code == 0, _outcome(run)


def test_check_passes_with_master_key(
    litellm_keyed: str, master_key: str, run_cli: Callable[..., CliRun], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("VAPI_HARNESS_API_KEY", raising=False)
    run = run_cli("check", "--url", f"{litellm_keyed}/v1", "--api-key", master_key)
    code = run.code
    assert code == 0, _outcome(run)


@pytest.fixture(scope="module")
def litellm_explore(
    litellm_executable: Path, tmp_path_factory: pytest.TempPathFactory, upstream: ServerThread
) -> Iterator[str]:
    """LiteLLM without a master key, routing every model name the generator draws to the fake LLM.

    LiteLLM cuts a stream that repeats one chunk 100 times (`REPEATED_STREAMING_CHUNK_LIMIT`, a guard against a
    looping model) with an error chunk: `explore` finds that when the fake LLM quotes a tool result such as
    `{"items": [null, null, ...]}` word by word (`chunk_has_no_error`: "The model is repeating the same chunk").
    That is LiteLLM's choice, known and configurable, so the limit is raised here for the rest to be explored.
    """
    workdir = tmp_path_factory.mktemp("litellm-explore")
    lifted = {"REPEATED_STREAMING_CHUNK_LIMIT": "100000"}
    with _litellm(litellm_executable, workdir, upstream, None, _explore_config(upstream), lifted) as url:
        yield url


def test_explore_finds_nothing(litellm_explore: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from harness.cli import main

    report_path = tmp_path / "explore.json"
    argv = ["explore", "--url", f"{litellm_explore}/v1", "--seed", "1", "--max-examples", "40", "--max-run-s", "240"]
    code = main([*argv, "--json", str(report_path), "--report-dir", str(tmp_path / "reports"), "--quiet"])
    out = capsys.readouterr().out
    report = json.loads(report_path.read_text())
    found = [f"{f['key']} -- {f['detail']} -- {json.dumps(f['request']['body'])[:600]}" for f in report["failures"]]
    assert code == 0, "\n".join([out, *found])

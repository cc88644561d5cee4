"""The composite action at the repository's root: it runs a `vapi-harness check` our own parser accepts."""

from __future__ import annotations

import os
import re
import stat
import subprocess
from pathlib import Path
from typing import Any

import yaml

from harness.cli import build_parser
from harness.cli import check as check_command
from harness.cli.options import resolve

ACTION = Path(__file__).resolve().parents[3] / "action.yml"
_INPUT = re.compile(r"\$\{\{\s*inputs\.([a-z0-9-]+)\s*\}\}")


def _action() -> dict[str, Any]:
    loaded: dict[str, Any] = yaml.safe_load(ACTION.read_text())
    return loaded


def _argv(tmp_path: Path, inputs: dict[str, str]) -> tuple[list[str], int, str]:
    """Run the action's check step in bash with `vapi-harness` stubbed: the arguments it was given."""
    action = _action()
    step = next(s for s in action["runs"]["steps"] if s.get("id") == "check")
    values = {name: spec.get("default", "") for name, spec in action["inputs"].items()} | inputs
    env = {key: _INPUT.sub(lambda m: values[m.group(1)], str(value)) for key, value in step["env"].items()}
    stub_dir = tmp_path / "bin"
    stub_dir.mkdir(exist_ok=True)
    stub = stub_dir / "vapi-harness"
    stub.write_text('#!/bin/sh\nprintf \'%s\\0\' "$@" > "$ARGV_FILE"\nexit 1\n')
    stub.chmod(stub.stat().st_mode | stat.S_IEXEC)
    outputs = tmp_path / "outputs"
    env |= {
        "PATH": f"{stub_dir}{os.pathsep}{os.environ['PATH']}",
        "ARGV_FILE": str(tmp_path / "argv"),
        "GITHUB_OUTPUT": str(outputs),
        "GITHUB_STEP_SUMMARY": str(tmp_path / "summary.md"),
    }
    done = subprocess.run(
        ["bash", "--noprofile", "--norc", "-eo", "pipefail", "-c", step["run"]],
        cwd=tmp_path, env=env, capture_output=True, text=True, timeout=30, check=False,
    )  # fmt: skip
    argv = (tmp_path / "argv").read_text().split("\0")[:-1]
    return argv, done.returncode, outputs.read_text()


def test_every_input_it_uses_is_declared_and_every_output_comes_from_a_step() -> None:
    action = _action()
    text = ACTION.read_text()
    assert set(_INPUT.findall(text)) <= set(action["inputs"])
    assert {"url", "api-key", "baseline", "args"} <= set(action["inputs"])
    steps = {s.get("id") for s in action["runs"]["steps"]}
    for output in action["outputs"].values():
        assert re.fullmatch(r"\$\{\{ steps\.([a-z]+)\.outputs\.[a-z-]+ \}\}", output["value"])
        assert output["value"].split(".")[1] in steps
    assert action["runs"]["using"] == "composite"


def test_the_check_step_runs_a_valid_vapi_harness_check_with_the_baseline(tmp_path: Path) -> None:
    argv, code, outputs = _argv(
        tmp_path,
        {"url": "http://127.0.0.1:8000/v1", "baseline": "main/report.json", "args": "--suite conformance --repeat 3",
         "api-key": "sk-secret-key"},
    )  # fmt: skip
    assert code == 1  # the command's exit code is the step's
    assert "sk-secret-key" not in argv  # the key travels in the environment only
    args = build_parser().parse_args(argv)
    assert args.handler is check_command.run
    values = resolve(args, check_command.OPTIONS, check_command.ENV_PREFIX, environ={})
    assert values["url"] == "http://127.0.0.1:8000/v1"
    assert values["baseline"] == Path("main/report.json")
    assert values["suite"] == ["conformance"] and values["repeat"] == 3
    assert values["markdown"] == tmp_path / "summary.md" and values["quiet"] is True
    assert values["json"] == Path("vapi-harness-reports/report.json")
    assert "exit-code=1" in outputs and "report=vapi-harness-reports/report.json" in outputs


def test_without_a_baseline_or_extra_arguments_it_is_a_plain_check(tmp_path: Path) -> None:
    argv, _, _ = _argv(tmp_path, {"url": "http://127.0.0.1:8000/v1"})
    values = resolve(build_parser().parse_args(argv), check_command.OPTIONS, check_command.ENV_PREFIX, environ={})
    assert values["baseline"] is None and values["suite"] == []

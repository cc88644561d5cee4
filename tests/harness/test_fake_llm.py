"""The fake LLM's faults and quirks: registered members, parsed from names with a suggestion, never tested as text."""

from __future__ import annotations

import ast
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from harness.fake_llm import FakeLLMConfig, Fault, Quirk

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize("kind", [Fault, Quirk])
def test_every_member_is_its_name_in_capitals_and_says_what_it_does(kind: type[Fault] | type[Quirk]) -> None:
    for member in kind:
        assert member.name == member.value.upper().replace("-", "_")
        assert member.description.strip() == member.description != ""
    assert len({m.description for m in kind}) == len(kind)


def test_the_config_parses_names_into_members() -> None:
    names: Any = {"faults": frozenset({"no-done", Fault.HANG}), "quirks": {"crlf"}}
    config = FakeLLMConfig(**names)
    assert config.faults == {Fault.NO_DONE, Fault.HANG}
    assert all(type(f) is Fault for f in config.faults)
    assert config.quirks == {Quirk.CRLF}
    assert all(type(q) is Quirk for q in config.quirks)
    assert config == FakeLLMConfig(faults=frozenset({Fault.NO_DONE, Fault.HANG}), quirks=frozenset({Quirk.CRLF}))


@pytest.mark.parametrize(
    ("field", "name", "message"),
    [
        ("faults", "no-choice", "unknown fault 'no-choice'. Did you mean 'no-choices'? See --list-faults"),
        ("faults", "crlf", "unknown fault 'crlf'. See --list-faults"),  # a quirk is not a fault
        ("quirks", "keep-alive", "unknown quirk 'keep-alive'. Did you mean 'keepalive'? See --list-faults"),
    ],
)
def test_an_unknown_name_is_refused_with_the_closest(field: str, name: str, message: str) -> None:
    names: Any = frozenset({name})
    with pytest.raises(ValueError) as raised:
        FakeLLMConfig(**{field: names})
    assert str(raised.value) == message


def test_list_faults_prints_every_member_in_order(run_cli: Callable[..., Any]) -> None:
    result = run_cli("fake-llm", "--list-faults")
    assert result.code == 0
    expected = [f"fault  {f.value:<22} {f.description}" for f in Fault]
    expected += [f"quirk  {q.value:<22} {q.description}" for q in Quirk]
    assert result.out.splitlines() == expected


def test_the_cli_names_an_unknown_fault_from_the_environment(
    run_cli: Callable[..., Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("VAPI_HARNESS_FAKE_LLM_FAULT", "no-done\nstatus500")
    result = run_cli("fake-llm", "--port", "0", "--reply", " ")  # were the fault taken, the empty reply stops it
    assert result.code == 2
    assert result.err == (
        "vapi-harness: error: VAPI_HARNESS_FAKE_LLM_FAULT: unknown fault 'status500'. "
        "Did you mean 'status-500'? See --list-faults\n"
    )


@pytest.mark.parametrize("path", ["harness/fake_llm/script.py", "harness/fake_llm/app.py"])
def test_faults_and_quirks_are_tested_as_members_never_as_text(path: str) -> None:
    tree = ast.parse((ROOT / path).read_text(encoding="utf-8"))
    as_text = [
        f"{path}:{node.lineno}: {ast.unparse(node)}"
        for node in ast.walk(tree)
        if isinstance(node, ast.Compare)
        and isinstance(node.left, ast.Constant)
        and isinstance(node.left.value, str)
        and any(isinstance(op, ast.In | ast.NotIn) for op in node.ops)
        and any(word in ast.unparse(node.comparators[0]) for word in ("faults", "quirks"))
    ]
    assert as_text == []

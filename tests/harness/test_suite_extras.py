"""The default suite with what an assistant adds: the call's variables, a templated system prompt, the
transcriber's extras on user messages, and OAuth2 (probes that carry the credential, and those that must not)."""

from __future__ import annotations

from typing import Any

import pytest

from harness.suite import SYSTEM_PROMPT, Probe, Target, default_probes
from mock_vapi import CustomLLMModel
from mock_vapi.transcriber import extra_fields, user_message
from mock_vapi.variables import TemplateError
from tests.harness.test_suite import NAMES, body

MODEL = CustomLLMModel(url="http://127.0.0.1:9/v1", model="m")


def suite(**target: Any) -> dict[str, Probe]:
    return {p.name: p for p in default_probes(Target(MODEL, **target))}


def test_without_the_new_settings_the_suite_is_unchanged() -> None:
    probes = suite(api_key="sk-suite-1")
    assert list(probes) == NAMES
    for probe in probes.values():
        if probe.request.json_body is None:
            continue
        sent = body(probe)
        assert sent["messages"][0] == {"role": "system", "content": SYSTEM_PROMPT}
        assert all(set(m) <= {"role", "content", "tool_calls", "tool_call_id"} for m in sent["messages"])
        if "call" in sent:
            assert sent["call"]["assistantOverrides"] == {"variableValues": {}}


def test_variables_ride_in_every_call_object_and_fill_the_system_prompt() -> None:
    prompt = 'Hello {{customerName}}, your plan is {{ plan | default: "basic" }}. Caller: {{ customer.number }}.'
    probes = suite(variables={"customerName": "Ada"}, system_prompt=prompt)
    with_call = [body(p) for p in probes.values() if p.request.json_body is not None and "call" in body(p)]
    assert len(with_call) >= 10  # every probe but metadata_off (no call object) and the malformed body
    assert all(b["call"]["assistantOverrides"]["variableValues"] == {"customerName": "Ada"} for b in with_call)
    filled = "Hello Ada, your plan is basic. Caller: +15551234567."
    for probe in probes.values():
        if probe.request.json_body is not None:
            assert body(probe)["messages"][0] == {"role": "system", "content": filled}


def test_a_system_prompt_that_is_not_liquid_names_the_system_prompt() -> None:
    with pytest.raises(TemplateError, match=r"^system prompt: expected '\}\}'"):
        suite(system_prompt="Hello {{ name")


@pytest.mark.parametrize(
    ("flags", "fields"),
    [
        ({"word_confidence": True}, ["metadata.wordLevelConfidence"]),
        ({"emotion": True}, ["metadata.emotion"]),
        ({"word_confidence": True, "emotion": True}, ["metadata.wordLevelConfidence", "metadata.emotion"]),
    ],
)
def test_the_transcriber_extras_probe_only_when_the_assistant_enables_one(
    flags: dict[str, bool], fields: list[str]
) -> None:
    probes = suite(**flags)
    names = [n for n in NAMES if not n.endswith("_api_key")]
    at = names.index("metadata_destructured") + 1
    assert list(probes) == [*names[:at], "transcriber_extras", *names[at:]]
    probe = probes["transcriber_extras"]
    assert probe.request.stream and not probe.optional
    messages = body(probe)["messages"]
    assert messages[-1] == user_message("What time do you open tomorrow?", **{"word_confidence": False,
                                        "emotion": False, **flags})  # fmt: skip
    assert extra_fields(messages) == fields
    assert all(extra_fields(body(p)["messages"]) == [] for n, p in probes.items() if n not in ("transcriber_extras",
               "malformed_body"))  # fmt: skip


def test_with_oauth2_the_auth_probes_run_and_only_they_carry_no_credential() -> None:
    probes = suite(token_auth=True)
    assert list(probes) == NAMES
    assert {n for n, p in probes.items() if not p.credentials} == {"wrong_api_key", "missing_api_key"}
    assert probes["wrong_api_key"].request.header("authorization") == "Bearer wrong-key-0000"
    assert {n for n, p in probes.items() if p.request.header("authorization")} == {"wrong_api_key"}


def test_the_user_message_shape() -> None:
    assert user_message("Hi there", word_confidence=False, emotion=False) == {"role": "user", "content": "Hi there"}
    assert user_message("Hi there", word_confidence=True, emotion=True) == {
        "role": "user",
        "content": "Hi there",
        "metadata": {
            "wordLevelConfidence": [{"word": "Hi", "confidence": 0.95}, {"word": "there", "confidence": 0.95}],
            "emotion": {"emotion": "neutral", "confidence": 0.9},
        },
    }
    assert extra_fields("not a list") == [] and extra_fields([None, {"role": "user", "metadata": "x"}]) == []
    assert extra_fields([{"role": "assistant", "metadata": {"emotion": {}}}]) == []

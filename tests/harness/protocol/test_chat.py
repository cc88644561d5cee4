"""The chat-completions parameter list servers use is the one the installed `openai` package declares."""

from __future__ import annotations

from harness.protocol import CHAT_PARAMS, openai_chat_params


def test_literal_parameter_list_matches_the_openai_package() -> None:
    derived = openai_chat_params()
    assert {"model", "messages", "stream", "tools", "stream_options"} <= derived
    missing, extra = sorted(derived - CHAT_PARAMS), sorted(CHAT_PARAMS - derived)
    assert not missing and not extra, f"update CHAT_PARAMS: add {missing}, remove {extra}"

"""Vapi's Liquid variables in assistant text, and its tool types as the OpenAI tools a custom LLM receives."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from mock_vapi.tools import TOOL_TYPES, UnknownToolType, openai_tool, tool_name
from mock_vapi.variables import TemplateError, builtin_variables, fill_assistant, render, variable_values

NOW = datetime(2026, 12, 3, 15, 4, tzinfo=UTC)


def test_values_and_filters_fill_a_prompt() -> None:
    values = variable_values({"customerName": "Ada"}, now=NOW, customer={"number": "+15550100"})
    text = 'Hello {{customerName}}, your plan is {{ plan | default: "basic" }}. Caller {{customer.number}}.'
    assert render(text, values, "x") == "Hello Ada, your plan is basic. Caller +15550100."
    assert render('{{ "now" | date: "%Y" }}-{{year}}', values, "x").endswith("-2026")
    assert render("{{unknown}}|", values, "x") == "|"  # no value renders as nothing, as LiquidJS does


def test_given_values_win_over_the_built_ins() -> None:
    assert variable_values({"year": "1999"}, now=NOW)["year"] == "1999"
    assert builtin_variables(NOW)["date"] == "Dec 03, 2026" and builtin_variables(NOW)["month"] == "December"


def test_a_broken_template_names_where_it_is() -> None:
    with pytest.raises(TemplateError, match=r"^firstMessage: .*unknown filter 'nosuch'"):
        fill_assistant({"firstMessage": "Hi {{ name | nosuch }}"}, {})


def test_every_text_vapi_fills_is_filled_and_the_original_kept() -> None:
    start = {"type": "request-start", "content": "One moment, {{name}}"}
    assistant = {
        "firstMessage": "Hi {{name}}",
        "model": {"messages": [{"role": "system", "content": "For {{name}}"}],
                  "tools": [{"type": "function", "messages": [start]}]},
    }  # fmt: skip
    filled = fill_assistant(assistant, {"name": "Ada"})
    assert filled["firstMessage"] == "Hi Ada" and filled["model"]["messages"][0]["content"] == "For Ada"
    assert filled["model"]["tools"][0]["messages"][0]["content"] == "One moment, Ada"
    assert assistant["firstMessage"] == "Hi {{name}}"


def test_every_tool_type_becomes_a_function_tool() -> None:
    for kind in TOOL_TYPES:
        tool = openai_tool({"type": kind}, "model.tools[0]")
        assert tool["type"] == "function" and tool["function"]["name"] == tool_name({"type": kind})
        assert tool["function"]["parameters"]["type"] == "object"


def test_a_tool_with_its_own_function_is_sent_with_it() -> None:
    own = {"name": "lookup", "description": "Find it", "parameters": {"type": "object", "properties": {}}}
    assert openai_tool({"type": "apiRequest", "function": own}, "t") == {"type": "function", "function": own}
    assert openai_tool({"type": "apiRequest", "name": "crm"}, "t")["function"]["name"] == "crm"


def test_transfer_destinations_become_an_enum() -> None:
    tool = openai_tool({"type": "transferCall", "destinations": [{"type": "number", "number": "+15550101"}]}, "t")
    assert tool["function"]["parameters"]["properties"]["destination"]["enum"] == ["+15550101"]


def test_an_unknown_type_is_named() -> None:
    known = r"^model.tools\[2\].type: 'fax' is not a Vapi tool type. Known types: function, endCall"
    with pytest.raises(UnknownToolType, match=known):
        openai_tool({"type": "fax"}, "model.tools[2]")
    with pytest.raises(UnknownToolType, match=r"function.name: required"):
        openai_tool({"type": "function", "function": {}}, "t")

"""The requests Vapi sends to a custom LLM: URL, headers and body."""

from __future__ import annotations

import json
from typing import Any

import pytest

from mock_vapi import (
    CallContext,
    ClientProfile,
    CustomLLMModel,
    InvalidModelConfig,
    MetadataSendMode,
    VapiRequest,
    build_request,
    completions_url,
    openai_tools,
    url_problems,
)

MODEL = CustomLLMModel(url="http://127.0.0.1:9/v1", model="m")
MESSAGES = [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "hi"}]
OFF_KEYS = {"model", "messages", "temperature", "max_tokens", "stream"}
CONTEXT_KEYS = {"call", "phoneNumber", "customer"}

FUNCTION_TOOL: dict[str, Any] = {
    "type": "function",
    "async": False,
    "server": {"url": "https://tools.example.com/hook", "secret": "s3cret"},
    "messages": [{"type": "request-start", "content": "One moment."}],
    "function": {
        "name": "book",
        "description": "Book a table.",
        "parameters": {"type": "object", "properties": {"time": {"type": "string"}}, "required": ["time"]},
    },
}


def body_of(request: VapiRequest) -> dict[str, Any]:
    """The JSON body, checked to be exactly what the serialized bytes say."""
    assert request.json_body is not None
    parsed = json.loads(request.body)
    assert parsed == request.json_body
    assert isinstance(parsed, dict)
    return parsed


def header_names(request: VapiRequest) -> list[str]:
    return [name.lower() for name, _ in request.headers]


# URL


@pytest.mark.parametrize(
    ("base", "url"),
    [
        ("http://h:8000/v1", "http://h:8000/v1/chat/completions"),
        ("http://h:8000/v1/", "http://h:8000/v1/chat/completions"),
        ("https://h", "https://h/chat/completions"),
        ("https://h/", "https://h/chat/completions"),
        ("http://h/v1/chat/completions", "http://h/v1/chat/completions/chat/completions"),
        ("http://h/v1//", "http://h/v1//chat/completions"),
        ("http://h/v1?key=k", "http://h/v1?key=k/chat/completions"),
    ],
    ids=["plain", "trailing-slash", "root", "root-slash", "no-dedup", "double-slash", "query"],
)
def test_completions_url_joins_like_the_sdk(base: str, url: str) -> None:
    assert completions_url(base) == url


def test_request_url_uses_the_joined_url() -> None:
    request = build_request(MODEL.with_(url="https://llm.example.com/api/"), MESSAGES)
    assert (request.method, request.url) == ("POST", "https://llm.example.com/api/chat/completions")


@pytest.mark.parametrize(
    "url",
    ["http://h:8000/v1", "https://llm.example.com/", "https://llm.example.com/secret-route/v1"],
    ids=["http", "https-root", "secret-path"],
)
def test_good_urls_have_no_problems(url: str) -> None:
    assert url_problems(url) == []


@pytest.mark.parametrize(
    ("url", "fragment"),
    [
        ("http://h/v1/chat/completions", "already ends in /chat/completions"),
        ("http://h/v1/chat/completions/", "already ends in /chat/completions"),
        ("http://h/v1?token=abc", "query or fragment"),
        ("http://h/v1#x", "query or fragment"),
        ("ftp://h/v1", "not an http(s) URL"),
        ("h:8000/v1", "not an http(s) URL"),
        ("http:///v1", "not an http(s) URL"),
    ],
    ids=["ends-in-path", "ends-in-path-slash", "query", "fragment", "ftp", "no-scheme", "no-host"],
)
def test_url_problems_are_flagged(url: str, fragment: str) -> None:
    problems = url_problems(url)
    assert len(problems) == 1
    assert fragment in problems[0]
    assert repr(url) in problems[0]


def test_url_problem_shows_the_url_vapi_would_call() -> None:
    (problem,) = url_problems("https://h/v1/chat/completions")
    assert "'https://h/v1/chat/completions/chat/completions'" in problem


def test_url_with_several_problems_lists_each() -> None:
    assert len(url_problems("ftp://h/chat/completions?x=1")) == 3


# Headers


def test_default_headers_are_the_js_sdks() -> None:
    request = build_request(MODEL, MESSAGES)
    assert request.header("Accept") == "application/json"  # even though the body asks for a stream
    assert request.header("Content-Type") == "application/json"
    user_agent = request.header("User-Agent")
    assert user_agent is not None
    assert user_agent.startswith("OpenAI/JS ")
    assert request.header("x-stainless-lang") == "js"
    assert request.header("X-Stainless-Runtime") == "node"
    assert request.header("X-Stainless-Retry-Count") == "0"
    for name in ("X-Stainless-Package-Version", "X-Stainless-OS", "X-Stainless-Arch", "X-Stainless-Runtime-Version"):
        assert request.header(name), name
    assert request.header("X-Stainless-Timeout") is None
    assert request.header("Authorization") is None


def test_client_profile_sets_versions() -> None:
    client = ClientProfile(sdk_version="9.9.9", runtime_version="v22.0.0", os="MacOS", arch="arm64")
    request = build_request(MODEL, MESSAGES, client=client)
    assert request.header("User-Agent") == "OpenAI/JS 9.9.9"
    assert request.header("X-Stainless-Package-Version") == "9.9.9"
    assert request.header("X-Stainless-Runtime-Version") == "v22.0.0"
    assert (request.header("X-Stainless-OS"), request.header("X-Stainless-Arch")) == ("MacOS", "arm64")


def test_timeout_header_only_when_the_profile_sends_it() -> None:
    request = build_request(MODEL.with_(timeout_s=45.7), MESSAGES, client=ClientProfile(send_timeout_header=True))
    assert request.header("X-Stainless-Timeout") == "45"


def test_non_streamed_request_has_the_same_accept() -> None:
    request = build_request(MODEL, MESSAGES, stream=False)
    assert request.header("Accept") == "application/json"
    assert request.stream is False
    assert body_of(request)["stream"] is False


@pytest.mark.parametrize(
    ("api_key", "expected"), [("sk-1", "Bearer sk-1"), (None, None), ("", None)], ids=["key", "none", "empty"]
)
def test_authorization_only_with_an_api_key(api_key: str | None, expected: str | None) -> None:
    request = build_request(MODEL, MESSAGES, api_key=api_key)
    assert request.header("Authorization") == expected
    assert header_names(request).count("authorization") == (1 if expected else 0)


def test_model_headers_are_added() -> None:
    request = build_request(MODEL.with_(headers={"X-Tenant": "acme"}), MESSAGES)
    assert request.header("x-tenant") == "acme"
    assert request.header("Accept") == "application/json"


def test_model_headers_override_defaults_case_insensitively() -> None:
    model = MODEL.with_(headers={"accept": "text/event-stream", "user-agent": "custom/1"})
    request = build_request(model, MESSAGES)
    assert request.header("Accept") == "text/event-stream"
    assert request.header("User-Agent") == "custom/1"
    names = header_names(request)
    assert names.count("accept") == 1
    assert names.count("user-agent") == 1


@pytest.mark.parametrize(
    ("api_key", "expected"), [(None, None), ("real", "Bearer real")], ids=["without-key", "with-key"]
)
@pytest.mark.parametrize("name", ["Authorization", "authorization", "AUTHORIZATION"], ids=["title", "lower", "upper"])
def test_model_headers_never_set_authorization(name: str, api_key: str | None, expected: str | None) -> None:
    request = build_request(MODEL.with_(headers={name: "Bearer from-headers"}), MESSAGES, api_key=api_key)
    assert request.header("Authorization") == expected
    assert all(v != "Bearer from-headers" for _, v in request.headers)


# Body


def test_defaults() -> None:
    assert (MODEL.temperature, MODEL.max_tokens, MODEL.timeout_s) == (0.5, 250, 20.0)
    assert MODEL.metadata_send_mode is MetadataSendMode.VARIABLE
    request = build_request(MODEL, MESSAGES)
    body = body_of(request)
    assert (body["model"], body["temperature"], body["max_tokens"], body["stream"]) == ("m", 0.5, 250, True)
    assert body["messages"] == MESSAGES
    assert (request.stream, request.timeout_s) == (True, 20.0)


def test_body_off_has_exactly_the_openai_fields() -> None:
    request = build_request(MODEL.with_(metadata_send_mode=MetadataSendMode.OFF), MESSAGES)
    assert set(body_of(request)) == OFF_KEYS


def test_body_off_ignores_a_given_context() -> None:
    context = CallContext.inbound_phone_call(metadata={"k": "v"})
    request = build_request(MODEL.with_(metadata_send_mode=MetadataSendMode.OFF), MESSAGES, context=context)
    assert set(body_of(request)) == OFF_KEYS


def test_body_variable_nests_metadata_beside_the_call() -> None:
    context = CallContext.inbound_phone_call(metadata={"tenant": "acme", "plan": 2}, call_id="call-1")
    body = body_of(build_request(MODEL, MESSAGES, context=context))
    assert set(body) == OFF_KEYS | {"metadata"} | CONTEXT_KEYS
    assert body["metadata"] == {"tenant": "acme", "plan": 2}
    assert body["call"]["id"] == "call-1"
    assert body["customer"] == {"number": "+15551234567"}
    assert body["phoneNumber"]["number"] == "+15557654321"


def test_body_variable_without_a_context_makes_a_phone_call() -> None:
    body = body_of(build_request(MODEL, MESSAGES))
    assert set(body) == OFF_KEYS | {"metadata"} | CONTEXT_KEYS
    assert body["metadata"] == {}
    assert body["call"]["type"] == "inboundPhoneCall"


def test_body_destructured_spreads_metadata_at_the_top() -> None:
    model = MODEL.with_(metadata_send_mode=MetadataSendMode.DESTRUCTURED)
    context = CallContext.inbound_phone_call(metadata={"tenant": "acme", "plan": 2})
    body = body_of(build_request(model, MESSAGES, context=context))
    assert set(body) == OFF_KEYS | {"tenant", "plan"} | CONTEXT_KEYS
    assert "metadata" not in body
    assert (body["tenant"], body["plan"]) == ("acme", 2)


def test_body_destructured_metadata_does_not_replace_openai_fields() -> None:
    model = MODEL.with_(metadata_send_mode=MetadataSendMode.DESTRUCTURED)
    context = CallContext.web_call(metadata={"model": "other", "stream": False, "extra": 1})
    body = body_of(build_request(model, MESSAGES, context=context))
    assert (body["model"], body["stream"], body["extra"]) == ("m", True, 1)


@pytest.mark.parametrize(
    "mode", [MetadataSendMode.VARIABLE, MetadataSendMode.DESTRUCTURED], ids=["variable", "destructured"]
)
def test_web_call_has_no_phone_number_or_customer(mode: MetadataSendMode) -> None:
    context = CallContext.web_call(call_id="web-1")
    body = body_of(build_request(MODEL.with_(metadata_send_mode=mode), MESSAGES, context=context))
    assert "call" in body
    assert "phoneNumber" not in body
    assert "customer" not in body
    assert body["call"]["type"] == "webCall"
    assert context.call_id == "web-1"


def test_call_context_objects_and_id() -> None:
    context = CallContext.inbound_phone_call(call_id="c-9")
    assert set(context.objects()) == CONTEXT_KEYS
    assert context.call_id == "c-9"
    assert CallContext().objects() == {}
    assert CallContext().call_id is None


def test_inbound_calls_get_fresh_ids() -> None:
    first, second = CallContext.inbound_phone_call(), CallContext.inbound_phone_call()
    assert first.call_id != second.call_id
    assert first.call is not None
    assert first.phone_number is not None
    assert first.call["phoneNumberId"] == first.phone_number["id"]


def test_messages_are_copied_not_shared() -> None:
    messages = [{"role": "user", "content": "hi"}]
    request = build_request(MODEL, messages)
    messages[0]["content"] = "changed"
    assert body_of(request)["messages"] == [{"role": "user", "content": "hi"}]


def test_model_values_reach_the_body() -> None:
    model = MODEL.with_(model="gpt-x", temperature=1.2, max_tokens=4000)
    body = body_of(build_request(model, MESSAGES))
    assert (body["model"], body["temperature"], body["max_tokens"]) == ("gpt-x", 1.2, 4000)


def test_extra_body_is_merged() -> None:
    extra = {"tool_choice": "auto", "stream_options": {"include_usage": True}}
    body = body_of(build_request(MODEL.with_(metadata_send_mode=MetadataSendMode.OFF), MESSAGES, extra_body=extra))
    assert set(body) == OFF_KEYS | set(extra)
    assert body["stream_options"] == {"include_usage": True}


def test_body_keeps_non_ascii_text() -> None:
    request = build_request(MODEL, [{"role": "user", "content": "héllo €"}])
    assert "héllo €".encode() in request.body
    assert body_of(request)["messages"][0]["content"] == "héllo €"


# Tools


def test_no_tools_key_without_tools() -> None:
    assert "tools" not in body_of(build_request(MODEL, MESSAGES))


def test_function_tool_keeps_only_the_openai_fields() -> None:
    body = body_of(build_request(MODEL.with_(tools=(FUNCTION_TOOL,)), MESSAGES))
    assert body["tools"] == [{"type": "function", "function": FUNCTION_TOOL["function"]}]
    serialized = json.dumps(body["tools"])
    for dropped in ("server", "async", "s3cret", "One moment."):
        assert dropped not in serialized


def test_function_tool_keeps_strict() -> None:
    tool = {"type": "function", "function": {"name": "f", "strict": True, "extra": 1}}
    assert openai_tools([tool]) == [{"type": "function", "function": {"name": "f", "strict": True}}]


def test_end_call_tool() -> None:
    (tool,) = openai_tools([{"type": "endCall"}])
    assert tool["type"] == "function"
    assert tool["function"]["name"] == "endCall"
    assert tool["function"]["parameters"] == {"type": "object", "properties": {}}


def test_transfer_call_tool_lists_destination_numbers() -> None:
    destinations = [{"type": "number", "number": "+15550001"}, {"type": "number", "number": "+15550002"}]
    (tool,) = openai_tools([{"type": "transferCall", "destinations": destinations}])
    function = tool["function"]
    assert function["name"] == "transferCall"
    destination = function["parameters"]["properties"]["destination"]
    assert destination["type"] == "string"
    assert destination["enum"] == ["+15550001", "+15550002"]


def test_transfer_call_without_destinations_has_no_enum() -> None:
    (tool,) = openai_tools([{"type": "transferCall"}])
    assert "enum" not in tool["function"]["parameters"]["properties"]["destination"]


def test_transfer_call_without_destination_numbers_has_no_empty_enum() -> None:
    (tool,) = openai_tools([{"type": "transferCall", "destinations": [{"type": "assistant"}]}])
    assert "enum" not in tool["function"]["parameters"]["properties"]["destination"]
    (sip,) = openai_tools([{"type": "transferCall", "destinations": [{"type": "sip", "sipUri": "sip:a@b"}]}])
    assert sip["function"]["parameters"]["properties"]["destination"]["enum"] == ["sip:a@b"]


def test_tools_keep_their_order() -> None:
    tools = openai_tools([{"type": "endCall"}, FUNCTION_TOOL, {"type": "dtmf"}, {"type": "transferCall"}])
    assert [t["function"]["name"] for t in tools] == ["endCall", "book", "dtmf", "transferCall"]


@pytest.mark.parametrize(
    ("tools", "message"),
    [
        ([{"type": "fax"}], r"model\.tools\[0\]\.type: 'fax' is not a Vapi tool type"),
        ([{"type": "endCall"}, {}], r"model\.tools\[1\]\.type: None"),
        ([{"type": "function", "function": {}}], r"model\.tools\[0\]\.function\.name: required"),
        ([{"type": "function"}], r"model\.tools\[0\]\.function\.name: required"),
        (["endCall"], r"model\.tools\[0\]\.type"),
    ],
    ids=["unknown-type", "missing-type", "function-without-name", "function-missing", "not-an-object"],
)
def test_bad_tools_are_rejected(tools: list[Any], message: str) -> None:
    with pytest.raises(InvalidModelConfig, match=message):
        openai_tools(tools)


# CustomLLMModel.from_vapi


def vapi_model(**fields: Any) -> dict[str, Any]:
    obj: dict[str, Any] = {"provider": "custom-llm", "url": "https://h/v1", "model": "m"}
    obj.update(fields)
    return {k: v for k, v in obj.items() if v is not None}


def test_from_vapi_defaults() -> None:
    model = CustomLLMModel.from_vapi(vapi_model())
    assert model == CustomLLMModel(url="https://h/v1", model="m")


def test_from_vapi_reads_camel_case() -> None:
    tools = [{"type": "endCall"}]
    model = CustomLLMModel.from_vapi(
        vapi_model(
            temperature=0,
            maxTokens=50,
            timeoutSeconds=60,
            metadataSendMode="destructured",
            headers={"X-Key": "v"},
            messages=[{"role": "system", "content": "Be brief."}],
            tools=tools,
        )
    )
    assert (model.temperature, model.max_tokens, model.timeout_s) == (0.0, 50, 60.0)
    assert model.metadata_send_mode is MetadataSendMode.DESTRUCTURED
    assert model.headers == {"X-Key": "v"}
    assert model.messages == ({"role": "system", "content": "Be brief."},)
    assert model.tools == tuple(tools)


def test_from_vapi_without_provider_is_custom_llm() -> None:
    model = CustomLLMModel.from_vapi({"url": "https://h/v1", "model": "m"})
    assert model.url == "https://h/v1"


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"url": None}, r"^model\.url: required"),
        ({"url": ""}, r"^model\.url: required"),
        ({"url": 5}, r"^model\.url: required"),
        ({"model": None}, r"^model\.model: required"),
        ({"provider": "openai"}, r"^model\.provider: expected 'custom-llm', got 'openai'"),
        ({"metadataSendMode": "always"}, r"^model\.metadataSendMode: 'always' is not one of off, variable"),
        ({"maxTokens": 49}, r"^model\.maxTokens: must be a number from 50 to 10000, got 49"),
        ({"maxTokens": 10001}, r"^model\.maxTokens: .*got 10001"),
        ({"maxTokens": "250"}, r"^model\.maxTokens: .*got '250'"),
        ({"maxTokens": True}, r"^model\.maxTokens: .*got True"),
        ({"temperature": 2.5}, r"^model\.temperature: must be a number from 0 to 2"),
        ({"timeoutSeconds": -1}, r"^model\.timeoutSeconds: "),
        ({"headers": {"X": 1}}, r"^model\.headers: must be an object of strings"),
        ({"headers": ["X"]}, r"^model\.headers: "),
        ({"messages": [{"content": "no role"}]}, r"^model\.messages: "),
        ({"tools": [{"type": "bogus"}]}, r"^model\.tools\[0\]\.type: 'bogus'"),
    ],
    ids=[
        "missing-url",
        "empty-url",
        "url-not-string",
        "missing-model",
        "other-provider",
        "bad-send-mode",
        "max-tokens-low",
        "max-tokens-high",
        "max-tokens-string",
        "max-tokens-bool",
        "temperature-high",
        "timeout-negative",
        "header-not-string",
        "headers-not-object",
        "message-without-role",
        "unknown-tool",
    ],
)
def test_from_vapi_errors_name_the_field(fields: dict[str, Any], message: str) -> None:
    with pytest.raises(InvalidModelConfig, match=message):
        CustomLLMModel.from_vapi(vapi_model(**fields))


@pytest.mark.parametrize("max_tokens", [50, 10000], ids=["low-edge", "high-edge"])
def test_from_vapi_accepts_max_tokens_at_the_edges(max_tokens: int) -> None:
    assert CustomLLMModel.from_vapi(vapi_model(maxTokens=max_tokens)).max_tokens == max_tokens


def test_from_vapi_error_uses_the_given_path() -> None:
    with pytest.raises(InvalidModelConfig, match=r"^assistant\.model\.url: "):
        CustomLLMModel.from_vapi({"model": "m"}, where="assistant.model")


def test_from_vapi_rejects_a_non_object() -> None:
    obj: Any = ["url"]
    with pytest.raises(InvalidModelConfig, match="model: must be an object, got list"):
        CustomLLMModel.from_vapi(obj)


def test_invalid_model_config_is_a_value_error() -> None:
    assert issubclass(InvalidModelConfig, ValueError)


# VapiRequest copies


def test_with_headers_sets_replaces_and_removes() -> None:
    request = build_request(MODEL, MESSAGES, api_key="k")
    changed = request.with_headers(accept="text/event-stream", authorization=None, x_probe="1")
    assert changed.header("Accept") == "text/event-stream"
    assert changed.header("Authorization") is None
    assert changed.header("X-Probe") == "1"
    assert header_names(changed).count("accept") == 1
    # The original is untouched.
    assert request.header("Accept") == "application/json"
    assert request.header("Authorization") == "Bearer k"
    assert changed.body == request.body


def test_with_headers_keeps_other_headers_in_order() -> None:
    request = build_request(MODEL, MESSAGES)
    changed = request.with_headers(content_type="text/plain")
    others = [h for h in request.headers if h[0].lower() != "content-type"]
    assert list(changed.headers[: len(others)]) == others
    assert changed.headers[-1] == ("Content-Type", "text/plain")


def test_with_body_replaces_the_bytes_and_forgets_the_json() -> None:
    request = build_request(MODEL, MESSAGES)
    changed = request.with_body(b"{not json")
    assert changed.body == b"{not json"
    assert changed.json_body is None
    assert (changed.url, changed.headers, changed.stream) == (request.url, request.headers, request.stream)
    assert request.json_body is not None


def test_header_lookup_is_case_insensitive() -> None:
    request = VapiRequest("POST", "http://h", (("X-A", "1"),), b"", True, 1.0)
    assert request.header("x-a") == request.header("X-A") == "1"
    assert request.header("x-b") is None


def test_body_bytes_are_compact_json() -> None:
    request = build_request(MODEL.with_(tools=(FUNCTION_TOOL,)), MESSAGES)
    assert body_of(request)["tools"][0]["function"]["name"] == "book"
    assert b", " not in request.body
    assert b'": ' not in request.body

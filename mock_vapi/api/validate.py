"""Validation the way Vapi's API answers it: every problem as one sentence in a `message` array (HTTP 400)."""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from typing import Any

from harness.protocol import is_http_url
from mock_vapi.tools import VAPI_TOOL_TYPES, UnknownToolType, openai_tool

__all__ = [
    "CREDENTIAL_PROVIDERS",
    "MODEL_PROVIDERS",
    "ApiError",
    "check_assistant",
    "check_credential",
    "check_credential_update",
    "check_tool",
    "check_tool_update",
]

CREDENTIAL_PROVIDERS = ("custom-llm", "openai", "openrouter", "together-ai", "anyscale", "groq")
MODEL_PROVIDERS = CREDENTIAL_PROVIDERS
_SEND_MODES = ("off", "variable", "destructured")
_CREDENTIAL_FIELDS = {"provider", "apiKey", "name", "authenticationPlan"}
_REASONS = {400: "Bad Request", 401: "Unauthorized", 404: "Not Found", 500: "Internal Server Error"}
_TOOL_MESSAGE_TYPES = ("request-start", "request-complete", "request-failed", "request-response-delayed")
_FUNCTION_NAME = re.compile(r"[a-zA-Z0-9_-]{1,64}")


class ApiError(Exception):
    """An error response in Vapi's shape: `{"message", "error", "statusCode"}`."""

    def __init__(self, status: int, message: str | list[str]) -> None:
        super().__init__(str(message))
        self.status = status
        self.message = message

    def body(self) -> dict[str, Any]:
        """The JSON body."""
        return {"message": self.message, "error": _REASONS.get(self.status, "Error"), "statusCode": self.status}


def _name(body: Mapping[str, Any], problems: list[str], prefix: str = "") -> None:
    if "name" in body and (not isinstance(body["name"], str) or not 1 <= len(body["name"]) <= 40):
        problems.append(f"{prefix}name must be a string of 1 to 40 characters")


def _plan(plan: Any, problems: list[str], prefix: str) -> None:
    if not isinstance(plan, Mapping):
        problems.append(f"{prefix}authenticationPlan must be an object")
        return
    if plan.get("type") != "oauth2":
        problems.append(f"{prefix}authenticationPlan.type must be one of the following values: oauth2")
    for key in ("url", "clientId", "clientSecret"):
        if not isinstance(plan.get(key), str) or not plan[key]:
            problems.append(f"{prefix}authenticationPlan.{key} must be a non-empty string")
    if "url" in plan and not is_http_url(plan["url"]):
        problems.append(f"{prefix}authenticationPlan.url must be a URL address")


def check_credential(body: Any, prefix: str = "") -> list[str]:
    """Problems with a `POST /credential` body (or an inline `assistant.credentials[i]`)."""
    if not isinstance(body, Mapping):
        return [f"{prefix or 'body '}must be an object".strip()]
    problems = [f"{prefix}property {key} should not exist" for key in body if key not in _CREDENTIAL_FIELDS]
    provider = body.get("provider")
    if provider not in CREDENTIAL_PROVIDERS:
        problems.append(f"{prefix}provider must be one of the following values: {', '.join(CREDENTIAL_PROVIDERS)}")
    key = body.get("apiKey")
    if not isinstance(key, str) or not key:
        problems.append(f"{prefix}apiKey must be a non-empty string")
    elif len(key) > 10000:
        problems.append(f"{prefix}apiKey must be shorter than or equal to 10000 characters")
    _name(body, problems, prefix)
    if "authenticationPlan" in body:
        if provider != "custom-llm":
            problems.append(f"{prefix}property authenticationPlan should not exist")
        else:
            _plan(body["authenticationPlan"], problems, prefix)
    return problems


def check_credential_update(body: Any, provider: str) -> list[str]:
    """Problems with a `PATCH /credential/{id}` body."""
    if not isinstance(body, Mapping):
        return ["body must be an object"]
    problems = [f"property {key} should not exist" for key in body if key not in _CREDENTIAL_FIELDS]
    if "provider" in body and body["provider"] != provider:
        problems.append(f"provider cannot be changed (this credential is {provider})")
    if "apiKey" in body and (not isinstance(body["apiKey"], str) or not body["apiKey"]):
        problems.append("apiKey must be a non-empty string")
    _name(body, problems)
    if "authenticationPlan" in body:
        _plan(body["authenticationPlan"], problems, "")
    return problems


def _check_tool_ids(model: Mapping[str, Any], problems: list[str], tool_exists: Callable[[str], bool] | None) -> None:
    """`model.toolIds` (and `toolRefs`, whose version pins this mock does not keep) name tools that exist."""
    ids = model.get("toolIds", [])
    if not isinstance(ids, list) or not all(isinstance(i, str) for i in ids):
        problems.append("model.toolIds must be an array of strings")
        ids = []
    refs = model.get("toolRefs", [])
    if not isinstance(refs, list) or not all(isinstance(r, Mapping) and isinstance(r.get("toolId"), str) for r in refs):
        problems.append("model.toolRefs must be an array of {toolId, version} objects")
        refs = []
    if tool_exists is not None:
        problems += [f"model.toolIds: tool {i} does not exist" for i in ids if not tool_exists(i)]
        problems += [f"model.toolRefs: tool {r['toolId']} does not exist" for r in refs if not tool_exists(r["toolId"])]


def _tool_problems(tool: Mapping[str, Any], where: str) -> list[str]:
    """What Vapi refuses in a tool (inline in `model.tools`, or a `POST /tool` body at `where=""`)."""
    try:
        openai_tool(tool, where or "tool")  # the type is one of Vapi's, and the tool can be sent to a model
    except UnknownToolType as exc:
        return [str(exc)]
    at = f"{where}." if where else ""
    problems: list[str] = []
    function = tool.get("function")
    if function is not None:
        name = function.get("name") if isinstance(function, Mapping) else None
        if not isinstance(name, str) or not _FUNCTION_NAME.fullmatch(name):
            problems.append(f"{at}function.name must be a-z, A-Z, 0-9, or contain underscores and dashes, "
                            "with a maximum length of 64")  # fmt: skip
        elif "parameters" in function and not isinstance(function["parameters"], Mapping):
            problems.append(f"{at}function.parameters must be an object")
    messages = tool.get("messages", [])
    if not isinstance(messages, list):
        problems.append(f"{at}messages must be an array")
        messages = []
    for i, message in enumerate(messages):
        if not isinstance(message, Mapping) or message.get("type") not in _TOOL_MESSAGE_TYPES:
            problems.append(f"{at}messages[{i}].type must be one of the following values: "
                            f"{', '.join(_TOOL_MESSAGE_TYPES)}")  # fmt: skip
        elif "content" in message and not isinstance(message["content"], str):
            problems.append(f"{at}messages[{i}].content must be a string")
    server = tool.get("server")
    if server is not None and (not isinstance(server, Mapping) or not is_http_url(server.get("url"))):
        problems.append(f"{at}server.url must be a URL address")
    if "async" in tool and not isinstance(tool["async"], bool):
        problems.append(f"{at}async must be a boolean value")
    return problems


def check_tool(body: Any) -> list[str]:
    """Problems with a `POST /tool` body (or a tool after a PATCH is merged); unknown fields are kept."""
    if not isinstance(body, Mapping):
        return ["body must be an object"]
    if body.get("type") not in VAPI_TOOL_TYPES:
        return [f"type must be one of the following values: {', '.join(VAPI_TOOL_TYPES)}"]
    return _tool_problems(body, "")


def check_tool_update(body: Any, kind: str) -> list[str]:
    """Problems with a `PATCH /tool/{id}` body before it is merged (Vapi's SDK always sends the `type`)."""
    if not isinstance(body, Mapping):
        return ["body must be an object"]
    if "type" in body and body["type"] != kind:
        return [f"type cannot be changed (this tool is {kind})"]
    return []


def _check_model(model: Any, problems: list[str], tool_exists: Callable[[str], bool] | None = None) -> None:
    if not isinstance(model, Mapping):
        problems.append("model must be an object")
        return
    provider = model.get("provider")
    if provider not in MODEL_PROVIDERS:
        problems.append(f"model.provider must be one of the following values: {', '.join(MODEL_PROVIDERS)}")
    if not isinstance(model.get("model"), str) or not model["model"]:
        problems.append("model.model must be a non-empty string")
    if provider == "custom-llm" and not is_http_url(model.get("url")):
        problems.append("model.url must be a URL address")
    if "metadataSendMode" in model and model["metadataSendMode"] not in _SEND_MODES:
        problems.append(f"model.metadataSendMode must be one of the following values: {', '.join(_SEND_MODES)}")
    headers = model.get("headers", {})
    if not isinstance(headers, Mapping) or not all(isinstance(v, str) for v in headers.values()):
        problems.append("model.headers must be an object of strings")
    messages = model.get("messages", [])
    if not isinstance(messages, list) or not all(isinstance(m, Mapping) and "role" in m for m in messages):
        problems.append("model.messages must be an array of {role, content} objects")
    tools = model.get("tools", [])
    if not isinstance(tools, list) or not all(isinstance(t, Mapping) and "type" in t for t in tools):
        problems.append("model.tools must be an array of tools with a type")
    else:
        for index, tool in enumerate(tools):
            problems += _tool_problems(tool, f"model.tools[{index}]")
    _check_tool_ids(model, problems, tool_exists)
    for key, low, high in (("temperature", 0, 2), ("maxTokens", 50, 10000), ("timeoutSeconds", 0, 300)):
        value = model.get(key)
        if value is not None and (
            not isinstance(value, int | float) or isinstance(value, bool) or not low <= value <= high
        ):
            problems.append(f"model.{key} must be a number from {low} to {high}")


def check_assistant(
    body: Any, credential_exists: Any = None, tool_exists: Callable[[str], bool] | None = None
) -> list[str]:
    """Problems with an assistant (after a PATCH is merged); unknown fields are kept, as Vapi keeps them."""
    if not isinstance(body, Mapping):
        return ["body must be an object"]
    problems: list[str] = []
    if "model" in body:
        _check_model(body["model"], problems, tool_exists)
    if "name" in body and (not isinstance(body["name"], str) or len(body["name"]) > 40):
        problems.append("name must be shorter than or equal to 40 characters")
    if "firstMessageMode" in body and body["firstMessageMode"] not in (
        "assistant-speaks-first",
        "assistant-waits-for-user",
        "assistant-speaks-first-with-model-generated-message",
    ):
        problems.append("firstMessageMode must be one of the following values: assistant-speaks-first, "
                        "assistant-waits-for-user, assistant-speaks-first-with-model-generated-message")  # fmt: skip
    ids = body.get("credentialIds", [])
    if not isinstance(ids, list) or not all(isinstance(i, str) for i in ids):
        problems.append("credentialIds must be an array of strings")
    elif credential_exists is not None:
        problems += [f"credentialIds: credential {i} does not exist" for i in ids if not credential_exists(i)]
    inline = body.get("credentials", [])
    if not isinstance(inline, list):
        problems.append("credentials must be an array")
    else:
        for index, credential in enumerate(inline):
            if isinstance(credential, Mapping) and "id" in credential and "apiKey" not in credential:
                continue  # stored earlier (its key was kept apart)
            problems += check_credential(credential, f"credentials.{index}.")
    server = body.get("server")
    if server is not None and (not isinstance(server, Mapping) or not is_http_url(server.get("url"))):
        problems.append("server.url must be a URL address")
    return problems

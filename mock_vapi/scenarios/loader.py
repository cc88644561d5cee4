"""Scenario files: YAML checked against the shipped JSON Schema; errors name the file, the line and the path."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator, Sequence
from functools import cache
from importlib import resources
from pathlib import Path
from typing import Any

import jsonschema
import yaml

from mock_vapi.errors import ConfigError, did_you_mean
from mock_vapi.scenarios.model import Scenario
from mock_vapi.tools import VAPI_TOOL_TYPES, unknown_type_hint
from mock_vapi.variables import TemplateError, fill_assistant, variable_values

__all__ = ["ScenarioError", "load_document", "load_file"]


class ScenarioError(ConfigError):
    """A scenario file that cannot be used; the message starts with `file:line: path:`."""


@cache
def _schema() -> dict[str, Any]:
    text = resources.files("mock_vapi").joinpath("schema/scenario.schema.json").read_text(encoding="utf-8")
    schema: dict[str, Any] = json.loads(text)
    return schema


def _yaml_problem(path: Path, exc: yaml.YAMLError) -> str:
    """`file:line: not valid YAML: ...`; an unclosed quote or bracket is named where it opened, not at the end."""
    problem = getattr(exc, "problem", None) or str(exc)
    mark = getattr(exc, "problem_mark", None)
    context, opened = getattr(exc, "context", None), getattr(exc, "context_mark", None)
    if opened is not None and context and ("quoted scalar" in context or "flow" in context):
        what = context.removeprefix("while scanning ").removeprefix("while parsing ")
        return f"{path}:{opened.line + 1}: not valid YAML: {what} opens here and is never closed ({problem})"
    where = f"{path}:{mark.line + 1}" if mark is not None else str(path)
    return f"{where}: not valid YAML: {problem}"


def load_file(path: Path) -> Scenario:
    """One scenario file, validated; raises `ScenarioError` with the file, line and path of the first problem."""
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise ScenarioError(f"{path}: cannot read: {exc}") from None
    try:
        node = yaml.compose(text, Loader=yaml.SafeLoader)
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise ScenarioError(_yaml_problem(path, exc)) from None
    if not isinstance(data, dict) or node is None:
        raise ScenarioError(f"{path}:1: a scenario file holds one mapping (name, assistant, turns, ...)")
    return _validated(data, str(path), node)


def load_document(data: dict[str, Any], source: str) -> Scenario:
    """A scenario given as a dict in the file format (for Python tests); errors name `source` and the path."""
    return _validated(data, source, None)


def _validated(data: dict[str, Any], source: str, node: yaml.Node | None) -> Scenario:
    validator = jsonschema.Draft202012Validator(_schema())
    errors = sorted(validator.iter_errors(data), key=lambda e: (len(e.absolute_path), list(map(str, e.path))))
    if errors:
        raise ScenarioError(_describe(source, node, errors[0]))
    _check_semantics(source, node, data)
    lines = {i: _line(node, ["turns", i]) for i in range(len(data["turns"]))} if node is not None else None
    return Scenario.from_dict(data, source, lines)


def _check_semantics(path: str, node: yaml.Node | None, data: dict[str, Any]) -> None:
    """What a schema cannot say: regexes compile, mocked tools exist, function tools can be answered."""
    for index, turn in enumerate(data["turns"]):
        regex = ((turn.get("expect") or {}).get("content") or {}).get("regex")
        if regex is not None:
            try:
                re.compile(regex)
            except re.error as exc:
                where = ["turns", index, "expect", "content", "regex"]
                raise ScenarioError(f"{_at(path, node, where)}: {_path(where)}: not a valid regex: {exc}") from None
    tools = ((data.get("assistant") or {}).get("model") or {}).get("tools") or []
    for index, tool in enumerate(tools):
        if tool.get("type") not in VAPI_TOOL_TYPES:
            at = ["assistant", "model", "tools", index, "type"]
            hint = unknown_type_hint(tool.get("type"))
            raise ScenarioError(
                f"{_at(path, node, at)}: {_path(at)}: {tool.get('type')!r} is not a Vapi tool type.{hint}"
            )
    names = {t["function"]["name"] for t in tools if t.get("type") == "function" and "function" in t}
    for name in data.get("toolResults") or {}:
        if name not in names:
            where = ["toolResults", name]
            hint = did_you_mean(name, names)
            raise ScenarioError(f"{_at(path, node, where)}: {_path(where)}: no function tool has this name.{hint}")
    for index, tool in enumerate(tools):
        where = ["assistant", "model", "tools", index]
        if tool.get("type") != "function":
            continue
        if "function" not in tool:
            raise ScenarioError(f"{_at(path, node, where)}: {_path(where)}: a function tool needs `function.name`")
        name = tool["function"]["name"]
        if name not in (data.get("toolResults") or {}) and not (tool.get("server") or {}).get("url"):
            raise ScenarioError(
                f"{_at(path, node, where)}: {_path(where)}: tool {name!r} has no server.url and no mocked "
                f"result; add `toolResults: {{{name}: ...}}`"
            )
    _check_templates(path, node, data)


def _check_templates(path: str, node: yaml.Node | None, data: dict[str, Any]) -> None:
    """The assistant's Liquid templates render (as the simulator fills them, with the file's `variables`)."""
    try:
        fill_assistant(data.get("assistant") or {}, variable_values(data.get("variables")))
    except TemplateError as exc:
        field, _, problem = str(exc).partition(": ")
        where = ["assistant", *(int(i) if i else k for k, i in re.findall(r"([^.\[\]]+)|\[(\d+)\]", field))]
        problem = f"not a valid Liquid template: {problem}"
        raise ScenarioError(f"{_at(path, node, where)}: {_path(where)}: {problem}") from None


def _describe(path: str, node: yaml.Node | None, error: jsonschema.ValidationError) -> str:
    where = list(error.absolute_path)
    schema: dict[str, Any] = error.schema if isinstance(error.schema, dict) else {}
    if error.validator == "additionalProperties" and isinstance(error.instance, dict):
        allowed = set((schema.get("properties") or {}).keys())
        unknown = [k for k in error.instance if k not in allowed]
        if unknown:
            key = unknown[0]
            target = [*where, key]
            hint = did_you_mean(key, allowed) or f" Known keys: {', '.join(sorted(allowed))}."
            return f"{_at(path, node, target, key_line=True)}: {_path(target)}: unknown key.{hint}"
    expected: Any = error.validator_value
    if error.validator == "required" and isinstance(expected, list) and isinstance(error.instance, dict):
        missing = [k for k in expected if k not in error.instance]
        return f"{_at(path, node, where)}: {_path(where)}: missing required key {missing[0]!r}"
    if error.validator == "enum" and isinstance(expected, list):
        choices = ", ".join(repr(c) for c in expected)
        hint = did_you_mean(str(error.instance), [str(c) for c in expected])
        if isinstance(error.instance, bool):
            hint += ' (YAML reads a bare off/on/yes/no as a boolean: quote it, e.g. "off")'
        return f"{_at(path, node, where)}: {_path(where)}: {error.instance!r} is not one of {choices}.{hint}"
    if error.validator == "oneOf" and error.context:
        best = min(error.context, key=lambda e: len(list(e.absolute_path)))
        return f"{_at(path, node, where)}: {_path(where)}: {best.message}"
    return f"{_at(path, node, where)}: {_path(where)}: {error.message}"


def _at(path: str, node: yaml.Node | None, parts: Sequence[Any], key_line: bool = False) -> str:
    """`file:line` of `parts`, or just the source for a document that came without a file."""
    return path if node is None else f"{path}:{_line(node, parts, key_line)}"


def _path(parts: Sequence[Any]) -> str:
    text = ""
    for part in parts:
        text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else str(part))
    return text or "(top level)"


def _children(node: yaml.Node) -> Iterator[tuple[Any, yaml.Node, yaml.Node]]:
    if isinstance(node, yaml.MappingNode):
        for key, value in node.value:
            yield key.value, key, value
    elif isinstance(node, yaml.SequenceNode):
        for index, value in enumerate(node.value):
            yield index, value, value


def _line(node: yaml.Node | None, parts: Sequence[Any], key_line: bool = False) -> int:
    """The 1-based line of the deepest node along `parts` that exists (0 without a file)."""
    if node is None:
        return 0
    current, line = node, node.start_mark.line + 1
    for part in parts:
        for name, key, value in _children(current):
            if name == part:
                line = (key if key_line else value).start_mark.line + 1
                if isinstance(value, yaml.ScalarNode) and not key_line:
                    line = value.start_mark.line + 1
                current = value
                break
        else:
            break
    return line

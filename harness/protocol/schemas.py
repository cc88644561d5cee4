"""JSON Schemas of OpenAI wire objects, derived from the `openai` package's own types.

Deriving them keeps us in step with the installed SDK instead of a hand-typed copy. Where Vapi
is laxer than OpenAI's spec, the error-level checks encode Vapi's rules directly; these schemas
judge the OpenAI spec and feed warning-level checks. Differences noted for Vapi:

- Vapi does not need `id`, `object`, `created` or `model` on a chunk, nor a `role` delta.
- `choices: []` (OpenAI's usage-only final chunk) is valid for both.

A stream repeats one shape of chunk thousands of times, and validating each costs a quarter of a
millisecond, so each shape found valid is remembered and not validated again (`_Shapes`).
"""

from __future__ import annotations

import threading
from collections.abc import Hashable
from functools import cache
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import jsonschema

__all__ = ["schema_errors"]


@cache
def _validator(name: str) -> jsonschema.protocols.Validator:
    # Imported here: the openai package costs ~0.6 s to import and only these schemas need it; servers that
    # share `harness.protocol` (the reference proxy) never pay for either.
    import jsonschema
    from openai.types.chat import ChatCompletion, ChatCompletionChunk
    from openai.types.shared import ErrorObject

    if name == "chunk":
        schema = ChatCompletionChunk.model_json_schema()
    elif name == "completion":
        schema = ChatCompletion.model_json_schema()
    elif name == "error_envelope":
        schema = {
            "type": "object",
            "properties": {"error": ErrorObject.model_json_schema()},
            "required": ["error"],
        }
    else:
        raise KeyError(name)
    cls = jsonschema.validators.validator_for(schema)
    return cls(schema)


def schema_errors(name: str, instance: Any, limit: int = 3) -> list[str]:
    """Validate `instance` against schema `name` (chunk, completion, error_envelope); return messages with paths."""
    shapes = _shapes(name)
    shape = shapes.of(instance)
    if shape is not None and shapes.is_valid(shape):
        return []
    errors = sorted(_validator(name).iter_errors(instance), key=lambda e: list(e.absolute_path))
    if not errors and shape is not None:
        shapes.add_valid(shape)
    return [f"{e.json_path}: {e.message}" for e in errors[:limit]]


# Keywords that judge a value beyond its JSON type or its equality to a literal; a schema that uses none of them
# gives every instance of one shape the same verdict. Annotations are not assertions and are not walked.
_VALUE_KEYWORDS = frozenset(
    {
        "pattern",
        "format",
        "minLength",
        "maxLength",
        "minimum",
        "maximum",
        "exclusiveMinimum",
        "exclusiveMaximum",
        "multipleOf",
        "uniqueItems",
        "contentEncoding",
        "contentMediaType",
        "contentSchema",
    }
)
_ANNOTATIONS = frozenset({"title", "description", "default", "examples", "deprecated", "readOnly", "writeOnly"})
_NAMED_SUBSCHEMAS = frozenset({"properties", "$defs", "definitions", "patternProperties", "dependentSchemas"})
_STRING, _INTEGER, _FLOAT, _INTEGRAL_FLOAT, _OBJECT, _ARRAY = (object() for _ in range(6))


class _TooLarge(Exception):
    pass


class _Shapes:
    """The shapes of instances a schema found valid: the JSON tree with every number replaced by its kind and every
    string by a placeholder, unless the string is one the schema names in an `enum` or `const`.

    Sound only when the schema judges values by nothing else (`_VALUE_KEYWORDS`); otherwise no shape is taken and
    every instance is validated. Bounded: shapes of more than `max_nodes` nodes are not taken, and the set is
    emptied when it reaches `max_shapes`.
    """

    def __init__(self, schema: Any, max_shapes: int = 4096, max_nodes: int = 2000) -> None:
        literals: set[str] = set()
        self._literals = frozenset(literals) if _collect(schema, literals) else None  # _collect fills literals
        self.max_shapes = max_shapes
        self.max_nodes = max_nodes
        self._valid: set[Hashable] = set()
        self._lock = threading.Lock()

    def of(self, instance: Any) -> Hashable | None:
        """The shape of `instance`, or None when it is not to be remembered."""
        if self._literals is None:
            return None
        budget = [self.max_nodes]
        try:
            return self._shape(instance, self._literals, budget)
        except _TooLarge:
            return None

    def is_valid(self, shape: Hashable) -> bool:
        return shape in self._valid

    def add_valid(self, shape: Hashable) -> None:
        with self._lock:
            if len(self._valid) >= self.max_shapes:
                self._valid.clear()
            self._valid.add(shape)

    def _shape(self, value: Any, literals: frozenset[str], budget: list[int]) -> Hashable:
        budget[0] -= 1
        if budget[0] < 0:
            raise _TooLarge
        if isinstance(value, str):
            return value if value in literals else _STRING
        if value is None or isinstance(value, bool):
            return value
        if isinstance(value, int):
            return _INTEGER
        if isinstance(value, float):
            return _INTEGRAL_FLOAT if value.is_integer() else _FLOAT
        if isinstance(value, dict):
            return (_OBJECT, *[(key, self._shape(item, literals, budget)) for key, item in value.items()])
        if isinstance(value, list):
            return (_ARRAY, *[self._shape(item, literals, budget) for item in value])
        raise _TooLarge  # not a JSON value: validate it every time


def _collect(schema: Any, literals: set[str]) -> bool:
    """Add the string literals of `schema`'s `enum`s and `const`s to `literals`; False if it judges values otherwise."""
    if not isinstance(schema, dict):
        return True
    for keyword, value in schema.items():
        if keyword in _ANNOTATIONS:
            continue
        if keyword in _VALUE_KEYWORDS:
            return False
        if keyword in ("enum", "const"):
            for literal in value if keyword == "enum" and isinstance(value, list) else [value]:
                if isinstance(literal, str):
                    literals.add(literal)
                elif not (literal is None or isinstance(literal, bool)):
                    return False  # a number, array or object literal: shapes would blur it
        elif keyword in _NAMED_SUBSCHEMAS and isinstance(value, dict):
            if not all(_collect(sub, literals) for sub in value.values()):
                return False
        elif isinstance(value, dict):
            if not _collect(value, literals):
                return False
        elif isinstance(value, list) and not all(_collect(sub, literals) for sub in value):
            return False
    return True


@cache
def _shapes(name: str) -> _Shapes:
    return _Shapes(_validator(name).schema)

"""JSON Schemas of OpenAI wire objects, derived from the `openai` package's own types.

Deriving them keeps us in step with the installed SDK instead of a hand-typed copy. Where Vapi
is laxer than OpenAI's spec, the error-level checks encode Vapi's rules directly; these schemas
judge the OpenAI spec and feed warning-level checks. Differences noted for Vapi:

- Vapi does not need `id`, `object`, `created` or `model` on a chunk, nor a `role` delta.
- `choices: []` (OpenAI's usage-only final chunk) is valid for both.
"""

from __future__ import annotations

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
    errors = sorted(_validator(name).iter_errors(instance), key=lambda e: list(e.absolute_path))
    return [f"{e.json_path}: {e.message}" for e in errors[:limit]]

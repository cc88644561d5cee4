"""`/tool`: Vapi's reusable tools: create, list, get, update, delete.

A tool is stored as given (unknown fields kept, as Vapi keeps them) with `id`, `orgId`, `createdAt` and
`updatedAt`. Its type is one of Vapi's (`mock_vapi.tools.VAPI_TOOL_TYPES`), else a 400 in Vapi's shape. How
an assistant's `model.toolIds` reach the model: `mock_vapi.api.llm.with_tools_by_id`.
"""

from __future__ import annotations

from typing import Any

from mock_vapi.api.resources import Collection
from mock_vapi.api.validate import ApiError, check_tool, check_tool_update

__all__ = ["Tools"]

_RESERVED = ("id", "orgId", "createdAt", "updatedAt")


class Tools(Collection):
    """`/tool`: validated by type; `PATCH` merges the given top-level fields (the type cannot change)."""

    kind = "tool"

    def create(self, body: Any) -> dict[str, Any]:
        """`POST /tool` (201)."""
        problems = check_tool(body)
        if problems:
            raise ApiError(400, problems)
        return self.store.create("tool", {k: v for k, v in body.items() if k not in _RESERVED})

    def update(self, tool_id: str, body: Any) -> dict[str, Any]:
        """`PATCH /tool/{id}`."""
        document = self.get(tool_id)
        problems = check_tool_update(body, str(document["type"]))
        if problems:
            raise ApiError(400, problems)
        merged = {**document, **{k: v for k, v in body.items() if k not in _RESERVED}}
        problems = check_tool(merged)
        if problems:
            raise ApiError(400, problems)
        return self.store.replace("tool", merged)

"""`/chat` and `/chat/responses`: a text conversation with the assistant's model, kept for continuity.

Streaming answers as Vapi does: one SSE event per content delta, `{"id", "path": "chat.output[0].content",
"delta"}` for `/chat`, OpenAI Responses events for `/chat/responses`. The stream ends by closing (Vapi
documents no terminal event). How Vapi tells a custom LLM that a request belongs to a chat is not documented:
the model gets the chat's id as `call.id` of a web call, with the assistant's metadata.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import AsyncIterator, Mapping
from typing import Any

from harness.protocol import encode_event
from mock_vapi.api.llm import ResolvedModel, record_exchange, resolve_model, run_turn
from mock_vapi.api.resources import ModelResource
from mock_vapi.api.validate import ApiError
from mock_vapi.context import CallContext
from mock_vapi.exchange import Exchange, Outcome, ParsedEvent

__all__ = ["Chats"]

_FIELDS = {
    "assistantId", "assistant", "assistantOverrides", "squadId", "squad", "name", "sessionId", "input", "stream",
    "previousChatId", "transport", "model",
}  # fmt: skip
_PATH = "chat.output[0].content"


def _messages(value: Any) -> list[dict[str, Any]] | None:
    if isinstance(value, str) and value:
        return [{"role": "user", "content": value}]
    if isinstance(value, list) and value and all(isinstance(m, Mapping) and "role" in m for m in value):
        return [dict(m) for m in value]
    return None


def _failure(exchange: Exchange) -> str | None:
    if exchange.status is not None and exchange.status >= 400:
        return f"the model answered HTTP {exchange.status}"
    if exchange.outcome is not Outcome.COMPLETE:
        return exchange.error or exchange.outcome.value
    return None


class _Turn:
    """A validated chat request: the assistant, the model to call, the history and the new messages."""

    def __init__(self, assistant: dict[str, Any], resolved: ResolvedModel, history: list[dict[str, Any]],
                 new: list[dict[str, Any]], fields: dict[str, Any]) -> None:  # fmt: skip
        self.assistant = assistant
        self.resolved = resolved
        self.history = history
        self.new = new
        self.fields = fields
        self.chat_id = str(uuid.uuid4())

    def prompt(self) -> list[dict[str, Any]]:
        system = [dict(m) for m in self.resolved.fields.get("messages") or []]
        return [*system, *self.history, *self.new]

    def context(self) -> CallContext:
        return CallContext.web_call(metadata=self.assistant.get("metadata") or {}, call_id=self.chat_id)


class Chats(ModelResource):
    """Creates chats by calling the assistant's model; lists and reads them back."""

    kind = "chat"

    def _turn(self, body: Any) -> _Turn:
        if not isinstance(body, Mapping):
            raise ApiError(400, ["body must be an object"])
        problems = [f"property {key} should not exist" for key in body if key not in _FIELDS]
        new = _messages(body.get("input"))
        if new is None:
            problems.append("input must be a non-empty string or an array of {role, content} messages")
        if "sessionId" in body and "previousChatId" in body:
            problems.append("sessionId and previousChatId cannot be used together")
        if problems:
            raise ApiError(400, problems)
        assert new is not None
        history: list[dict[str, Any]] = []
        previous: dict[str, Any] | None = None
        if body.get("previousChatId"):
            previous = self.store.get("chat", str(body["previousChatId"]))
            if previous is None:
                raise ApiError(400, [f"previousChatId: chat {body['previousChatId']} does not exist"])
        elif body.get("sessionId"):
            chats = self.store.query("chat", limit=1, where={"sessionId": body["sessionId"]})
            previous = chats[0] if chats else None
        if previous is not None:
            history = [*previous.get("messages", []), *previous.get("output", [])]
        if body.get("assistantId"):
            assistant = self.assistants.get(str(body["assistantId"]))
        elif body.get("assistant") is not None:
            assistant = self.assistants.prepare(body["assistant"])
        elif previous is not None:
            assistant = (
                self.assistants.get(previous["assistantId"]) if previous.get("assistantId") else previous["assistant"]
            )
        else:
            raise ApiError(400, "Chat requires assistant, assistantId, previousChatId or a sessionId with chats.")
        resolved = resolve_model(self.store, assistant, self.provider_urls)
        fields = {k: body[k] for k in ("assistantId", "sessionId", "previousChatId", "name") if k in body}
        if "assistant" in body and "assistantId" not in body:
            fields["assistant"] = assistant
        elif previous is not None and "assistantId" not in body:
            fields.update({k: previous[k] for k in ("assistantId", "assistant") if k in previous})
        return _Turn(assistant, resolved, history, new, fields)

    def _save(self, turn: _Turn, body: Mapping[str, Any], text: str, error: str | None) -> dict[str, Any]:
        document = {
            **turn.fields,
            "input": body["input"],
            "stream": bool(body.get("stream")),
            "messages": [*turn.history, *turn.new],
            "output": [{"role": "assistant", "content": text}],
        }
        if error is not None:
            document["error"] = error
        return self.store.create("chat", document, resource_id=turn.chat_id)

    async def create(self, body: Any) -> dict[str, Any]:
        """`POST /chat` without streaming: the Chat with `output`."""
        turn = self._turn(body)
        exchange = await run_turn(self.session(), turn.resolved, turn.prompt(), turn.context())
        record_exchange(self.store, exchange, "chat", turn.chat_id)
        failure = _failure(exchange)
        if failure is not None:
            self._save(turn, body, exchange.text, failure)
            raise ApiError(500, f"pipeline-error-{turn.resolved.provider}-llm-failed: {failure}")
        return self._save(turn, body, exchange.text, None)

    async def stream(self, body: Any, responses: bool = False) -> AsyncIterator[bytes]:
        """`POST /chat` (or `/chat/responses`) with `stream: true`: events as the model's deltas arrive."""
        turn = self._turn(body)  # raises before the stream starts, so errors keep their status
        return self._events(turn, body, responses)

    async def _events(self, turn: _Turn, body: Mapping[str, Any], responses: bool) -> AsyncIterator[bytes]:
        queue: asyncio.Queue[str | None] = asyncio.Queue()

        def relay(events: list[ParsedEvent]) -> None:
            for event in events:
                if event.spoken and event.content:
                    queue.put_nowait(event.content)

        async def read() -> Exchange:
            try:
                return await run_turn(self.session(), turn.resolved, turn.prompt(), turn.context(), on_events=relay)
            finally:
                queue.put_nowait(None)

        task = asyncio.create_task(read())
        item_id = f"msg_{turn.chat_id}"
        try:
            while (delta := await queue.get()) is not None:
                if responses:
                    payload = {"type": "response.output_text.delta", "item_id": item_id, "output_index": 0,
                               "content_index": 0, "delta": delta}  # fmt: skip
                    yield encode_event(payload, "response.output_text.delta")
                else:
                    event: dict[str, Any] = {"id": turn.chat_id, "path": _PATH, "delta": delta}
                    if "sessionId" in body:
                        event["sessionId"] = body["sessionId"]
                    yield encode_event(event)
            exchange = await task
        finally:
            task.cancel()
        record_exchange(self.store, exchange, "chat", turn.chat_id)
        failure = _failure(exchange)
        chat = self._save(turn, body, exchange.text, failure)
        if responses:
            if failure is None:
                done = {"type": "response.output_text.done", "item_id": item_id, "output_index": 0,
                        "content_index": 0, "text": exchange.text}  # fmt: skip
                yield encode_event(done, "response.output_text.done")
                completed = {"type": "response.completed", "response": response_object(chat)}
                yield encode_event(completed, "response.completed")
            else:
                error = {"type": "error", "code": "llm_failed", "message": failure, "param": None, "sequence_number": 0}
                yield encode_event(error, "error")

    async def respond(self, body: Any) -> dict[str, Any]:
        """`POST /chat/responses` without streaming: an OpenAI Responses object."""
        return response_object(await self.create(body))

    def page(self, limit: int, where: dict[str, Any]) -> dict[str, Any]:
        """`GET /chat`: Vapi's paginated shape."""
        matching = self.store.query("chat", limit=1_000_000, where=where)
        return {"results": matching[:limit], "metadata": {"itemsPerPage": limit, "totalItems": len(matching),
                                                          "currentPage": 1}}  # fmt: skip


def response_object(chat: Mapping[str, Any]) -> dict[str, Any]:
    """A stored chat as an OpenAI Responses object (what `/chat/responses` answers)."""
    text = chat["output"][0]["content"] if chat.get("output") else ""
    return {
        "id": chat["id"],
        "object": "response",
        "created_at": int(time.time()),
        "status": "failed" if chat.get("error") else "completed",
        "error": chat.get("error"),
        "output": [
            {
                "id": f"msg_{chat['id']}",
                "type": "message",
                "role": "assistant",
                "status": "completed",
                "content": [{"type": "output_text", "text": text, "annotations": []}],
            }
        ],
    }

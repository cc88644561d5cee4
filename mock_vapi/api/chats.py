"""`/chat` and `/chat/responses`: a text conversation with the assistant's model, kept for continuity.

Streaming answers as Vapi does: one SSE event per content delta, `{"id", "path": "chat.output[0].content",
"delta"}` for `/chat`, OpenAI Responses events for `/chat/responses`. The stream ends by closing (Vapi
documents no terminal event). How Vapi tells a custom LLM that a request belongs to a chat is not documented:
the model gets the chat's id as `call.id` of a web call, with the assistant's metadata and the chat's
`assistantOverrides.variableValues`.

`assistantOverrides` are merged into the assistant and validated (`apply_overrides`), and its Liquid is filled
with the variables (`fill_variables`) before the model is called. A chat continued with `previousChatId` or
`sessionId` plays the overrides of the chat it continues, with its own merged over them (so the variables given
first are kept until new ones are given); the chat keeps and returns the overrides it played.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import AsyncIterator, Callable, Mapping
from dataclasses import replace
from typing import Any

from harness.protocol import encode_event
from mock_vapi.api.llm import ResolvedModel, record_exchange, run_turn
from mock_vapi.api.overrides import (
    apply_overrides,
    fill_variables,
    merge_overrides,
    public_overrides,
    variable_values_of,
)
from mock_vapi.api.resources import ModelResource
from mock_vapi.api.validate import ApiError
from mock_vapi.context import CallContext
from mock_vapi.exchange import Exchange, Outcome, ParsedEvent
from mock_vapi.oauth2 import TokenError

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
                 new: list[dict[str, Any]], fields: dict[str, Any], values: dict[str, Any]) -> None:  # fmt: skip
        self.assistant = assistant  # overrides applied, Liquid filled
        self.resolved = resolved
        self.history = history
        self.new = new
        self.fields = fields
        self.values = values  # the variableValues given (the built-ins are not sent)
        self.chat_id = str(uuid.uuid4())

    def prompt(self) -> list[dict[str, Any]]:
        system = [dict(m) for m in self.resolved.fields.get("messages") or []]
        return [*system, *self.history, *self.new]

    def context(self) -> CallContext:
        return CallContext.web_call(
            metadata=self.assistant.get("metadata") or {}, call_id=self.chat_id, variable_values=self.values
        )


def _customer(body: Mapping[str, Any]) -> Mapping[str, Any] | None:
    """The customer a chat knows (an SMS transport's), for `{{customer.number}}`."""
    transport = body.get("transport")
    customer = transport.get("customer") if isinstance(transport, Mapping) else None
    return customer if isinstance(customer, Mapping) else None


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
        overrides = self._overrides(body, previous)
        played = apply_overrides(self.assistants, assistant, overrides)
        values = variable_values_of(overrides)
        filled = fill_variables(self.store, played, values, customer=_customer(body))
        resolved = self.resolve(filled)
        fields = {k: body[k] for k in ("assistantId", "sessionId", "previousChatId", "name") if k in body}
        if "assistant" in body and "assistantId" not in body:
            fields["assistant"] = assistant
        elif previous is not None and "assistantId" not in body:
            fields.update({k: previous[k] for k in ("assistantId", "assistant") if k in previous})
        if overrides is not None:
            fields["assistantOverrides"] = public_overrides(overrides, played)
        return _Turn(filled, resolved, history, new, fields, values)

    @staticmethod
    def _overrides(body: Mapping[str, Any], previous: Mapping[str, Any] | None) -> Any:
        """The overrides a chat plays: those of the chat it continues, with its own merged over them."""
        given = body.get("assistantOverrides")
        kept = previous.get("assistantOverrides") if previous is not None else None
        if kept is None:
            return given
        return kept if given is None else merge_overrides(kept, given)

    async def _authorize(self, turn: _Turn, body: Mapping[str, Any]) -> None:
        """Fix the key for this chat's request (an OAuth2 token is fetched now); a token endpoint that fails
        ends the chat as Vapi ends it, with a 500, before any stream starts."""
        try:
            key = await turn.resolved.current_key(self.session())
        except TokenError as exc:
            failure = f"could not get an OAuth2 token: {exc}"
            self._save(turn, body, "", failure)
            raise ApiError(500, f"pipeline-error-{turn.resolved.provider}-llm-failed: {failure}") from None
        turn.resolved = replace(turn.resolved, api_key=key, token_source=None)

    def _recorder(self, turn: _Turn) -> Callable[[Exchange], None]:
        return lambda exchange: record_exchange(self.store, exchange, "chat", turn.chat_id)

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
        await self._authorize(turn, body)
        exchange = await run_turn(
            self.session(), turn.resolved, turn.prompt(), turn.context(), on_exchange=self._recorder(turn)
        )
        failure = _failure(exchange)
        if failure is not None:
            self._save(turn, body, exchange.text, failure)
            raise ApiError(500, f"pipeline-error-{turn.resolved.provider}-llm-failed: {failure}")
        return self._save(turn, body, exchange.text, None)

    async def stream(self, body: Any, responses: bool = False) -> AsyncIterator[bytes]:
        """`POST /chat` (or `/chat/responses`) with `stream: true`: events as the model's deltas arrive."""
        turn = self._turn(body)  # raises before the stream starts, so errors keep their status
        await self._authorize(turn, body)
        return self._events(turn, body, responses)

    async def _events(self, turn: _Turn, body: Mapping[str, Any], responses: bool) -> AsyncIterator[bytes]:
        queue: asyncio.Queue[str | None] = asyncio.Queue()

        def relay(events: list[ParsedEvent]) -> None:
            for event in events:
                if event.spoken and event.content:
                    queue.put_nowait(event.content)

        async def read() -> Exchange:
            try:
                return await run_turn(self.session(), turn.resolved, turn.prompt(), turn.context(),
                                      on_events=relay, on_exchange=self._recorder(turn))  # fmt: skip
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

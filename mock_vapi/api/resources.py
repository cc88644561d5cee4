"""Credentials and assistants: CRUD with Vapi's paths, status codes and shapes; keys never leave the store."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Mapping
from typing import Any, ClassVar

import aiohttp

from mock_vapi.api.llm import NO_RETRIES, ResolvedModel, RetryPolicy, TokenSources, resolve_model
from mock_vapi.api.store import Store
from mock_vapi.api.validate import ApiError, check_assistant, check_credential, check_credential_update

__all__ = ["Assistants", "Collection", "Credentials", "ModelResource"]


def _public_plan(plan: Any) -> Any:
    return {k: v for k, v in plan.items() if k != "clientSecret"} if isinstance(plan, Mapping) else plan


class Collection:
    """One kind of stored resource: reading, listing and deleting it, with Vapi's 404."""

    kind: ClassVar[str]

    def __init__(self, store: Store) -> None:
        self.store = store

    def get(self, resource_id: str) -> dict[str, Any]:
        """`GET /<kind>/{id}`."""
        document = self.store.get(self.kind, resource_id)
        if document is None:
            raise ApiError(404, f"Couldn't find {self.kind} with id {resource_id}")
        return document

    def list(self, limit: int, where: dict[str, Any] | None = None) -> list[dict[str, Any]]:
        """`GET /<kind>`, newest first."""
        return self.store.query(self.kind, limit=limit, where=where)

    def delete(self, resource_id: str) -> dict[str, Any]:
        """`DELETE /<kind>/{id}`: the deleted resource."""
        document = self.store.delete(self.kind, resource_id)
        if document is None:
            raise ApiError(404, f"Couldn't find {self.kind} with id {resource_id}")
        return document


class Credentials(Collection):
    """`/credential`: the key (and an OAuth2 client secret) is kept apart and never returned."""

    kind = "credential"

    def create(self, body: Any) -> dict[str, Any]:
        """`POST /credential`."""
        problems = check_credential(body)
        if problems:
            raise ApiError(400, problems)
        public = {k: v for k, v in body.items() if k != "apiKey"}
        if "authenticationPlan" in public:
            public["authenticationPlan"] = _public_plan(public["authenticationPlan"])
        document = self.store.create("credential", public)
        self.store.set_secret(document["id"], body["apiKey"], {"authenticationPlan": body.get("authenticationPlan")})
        return document

    def update(self, credential_id: str, body: Any) -> dict[str, Any]:
        """`PATCH /credential/{id}`."""
        document = self.get(credential_id)
        problems = check_credential_update(body, document["provider"])
        if problems:
            raise ApiError(400, problems)
        if "apiKey" in body or "authenticationPlan" in body:  # what is not given is kept
            extra = self.store.secret_extra(credential_id)
            if "authenticationPlan" in body:
                extra["authenticationPlan"] = body["authenticationPlan"]
            self.store.set_secret(credential_id, body.get("apiKey") or self.store.secret(credential_id) or "", extra)
        changes = {k: v for k, v in body.items() if k not in ("apiKey", "provider")}
        if "authenticationPlan" in changes:
            changes["authenticationPlan"] = _public_plan(changes["authenticationPlan"])
        return self.store.replace("credential", {**document, **changes})


class Assistants(Collection):
    """`/assistant`: validated like Vapi validates a custom-llm model; unknown fields are kept."""

    kind = "assistant"

    def _exists(self, credential_id: str) -> bool:
        return self.store.get("credential", credential_id) is not None

    def _tool_exists(self, tool_id: str) -> bool:
        return self.store.get("tool", tool_id) is not None

    def prepare(self, body: Any) -> dict[str, Any]:
        """Validate an assistant body; inline credentials get an id and their keys go to the store."""
        problems = check_assistant(body, self._exists, self._tool_exists)
        if problems:
            raise ApiError(400, problems)
        prepared = dict(body)
        if body.get("credentials"):
            credentials = []
            for credential in body["credentials"]:
                if "apiKey" in credential:
                    credential_id = str(uuid.uuid4())
                    plan = credential.get("authenticationPlan")
                    self.store.set_secret(credential_id, credential["apiKey"], {"authenticationPlan": plan})
                    public = {k: v for k, v in credential.items() if k != "apiKey"}
                    if "authenticationPlan" in public:
                        public["authenticationPlan"] = _public_plan(public["authenticationPlan"])
                    credential = {**public, "id": credential_id}
                credentials.append(credential)
            prepared["credentials"] = credentials
        return prepared

    def create(self, body: Any) -> dict[str, Any]:
        """`POST /assistant` (201)."""
        return self.store.create("assistant", self.prepare(body))

    def update(self, assistant_id: str, body: Any) -> dict[str, Any]:
        """`PATCH /assistant/{id}`: the given top-level fields replace the stored ones."""
        document = self.get(assistant_id)
        if not isinstance(body, Mapping):
            raise ApiError(400, ["body must be an object"])
        reserved = {"id", "orgId", "createdAt", "updatedAt"}
        merged = {**document, **{k: v for k, v in body.items() if k not in reserved}}
        return self.store.replace("assistant", self.prepare(merged))


class ModelResource(Collection):
    """A resource made by calling an assistant's model (chats, calls)."""

    def __init__(
        self, store: Store, assistants: Assistants, session: Callable[[], aiohttp.ClientSession],
        provider_urls: Mapping[str, str], *, tokens: TokenSources | None = None, retries: RetryPolicy = NO_RETRIES,
    ) -> None:  # fmt: skip
        super().__init__(store)
        self.assistants = assistants
        self.session = session
        self.provider_urls = provider_urls
        self.tokens = tokens or TokenSources()
        self.retries = retries

    def resolve(self, assistant: Mapping[str, Any]) -> ResolvedModel:
        """`resolve_model` with this app's provider URLs, OAuth2 token sources and retry switch."""
        return resolve_model(self.store, assistant, self.provider_urls, tokens=self.tokens, retries=self.retries)

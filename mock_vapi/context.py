"""The call context Vapi attaches to custom-llm requests: `call`, `phoneNumber`, `customer`, `metadata`."""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

__all__ = ["CallContext"]


def _now_iso() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


@dataclass(frozen=True)
class CallContext:
    """What Vapi knows about the call; `None` objects are left out of the body (web calls have no phone number)."""

    call: Mapping[str, Any] | None = None
    phone_number: Mapping[str, Any] | None = None
    customer: Mapping[str, Any] | None = None
    metadata: Mapping[str, Any] = field(default_factory=dict)

    def objects(self) -> dict[str, Any]:
        """The `call`, `phoneNumber` and `customer` body fields that are present."""
        fields = {"call": self.call, "phoneNumber": self.phone_number, "customer": self.customer}
        return {k: dict(v) for k, v in fields.items() if v is not None}

    @property
    def call_id(self) -> str | None:
        """`call.id`, the key that ties a turn's requests to one call."""
        return str(self.call["id"]) if self.call and "id" in self.call else None

    @classmethod
    def inbound_phone_call(
        cls,
        *,
        customer_number: str = "+15551234567",
        assistant_number: str = "+15557654321",
        metadata: Mapping[str, Any] | None = None,
        call_id: str | None = None,
        variable_values: Mapping[str, Any] | None = None,
    ) -> CallContext:
        """A realistic in-progress inbound phone call, with fresh ids; `variable_values` as the call was created
        with (`assistantOverrides.variableValues`)."""
        call_id = call_id or str(uuid.uuid4())
        org_id, assistant_id, number_id = (str(uuid.uuid4()) for _ in range(3))
        now = _now_iso()
        customer = {"number": customer_number}
        monitor_base = f"phone-call-websocket.example.vapi.ai/{call_id}"
        call = {
            "id": call_id,
            "orgId": org_id,
            "createdAt": now,
            "updatedAt": now,
            "type": "inboundPhoneCall",
            "status": "in-progress",
            "assistantId": assistant_id,
            "phoneNumberId": number_id,
            "phoneCallProvider": "vapi",
            "phoneCallTransport": "pstn",
            "phoneCallProviderId": "CA" + uuid.uuid4().hex[:30],
            "customer": customer,
            "monitor": {"listenUrl": f"wss://{monitor_base}/listen", "controlUrl": f"https://{monitor_base}/control"},
            "assistantOverrides": {"variableValues": dict(variable_values or {})},
        }
        phone_number = {
            "id": number_id,
            "orgId": org_id,
            "number": assistant_number,
            "name": "Main line",
            "provider": "vapi",
            "createdAt": now,
            "updatedAt": now,
        }
        return cls(call=call, phone_number=phone_number, customer=customer, metadata=dict(metadata or {}))

    @classmethod
    def web_call(
        cls,
        *,
        metadata: Mapping[str, Any] | None = None,
        call_id: str | None = None,
        variable_values: Mapping[str, Any] | None = None,
    ) -> CallContext:
        """A web call: no phone number and no customer."""
        call_id = call_id or str(uuid.uuid4())
        now = _now_iso()
        call = {
            "id": call_id,
            "orgId": str(uuid.uuid4()),
            "createdAt": now,
            "updatedAt": now,
            "type": "webCall",
            "status": "in-progress",
            "assistantId": str(uuid.uuid4()),
            "webCallUrl": f"https://vapi.daily.co/{call_id[:8]}",
            "monitor": {
                "listenUrl": f"wss://phone-call-websocket.example.vapi.ai/{call_id}/listen",
                "controlUrl": f"https://phone-call-websocket.example.vapi.ai/{call_id}/control",
            },
            "assistantOverrides": {"variableValues": dict(variable_values or {})},
        }
        return cls(call=call, metadata=dict(metadata or {}))

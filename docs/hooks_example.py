"""An example hook for `vapi-harness proxy --hooks hooks_example:add_caller_context`.

It tells the model who is calling and what time it is where the business is, by adding a system message
before the conversation. Put this file on PYTHONPATH (or next to where you start the proxy).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from reference_proxy.hooks import HookError, VapiContext

BUSINESS_TIMEZONE = ZoneInfo("America/New_York")
BLOCKED_NUMBERS = frozenset({"+15550000000"})


async def add_caller_context(body: dict[str, Any], context: VapiContext) -> dict[str, Any]:
    """Add the caller's number and the local time; refuse blocked numbers with a clean 403."""
    number = (context.customer or {}).get("number")
    if number in BLOCKED_NUMBERS:
        raise HookError("This caller is blocked.", status=403, code="caller_blocked")
    now = datetime.now(BUSINESS_TIMEZONE).strftime("%A %H:%M")
    note = f"The caller's number is {number or 'unknown'}. Local time at the office: {now}."
    return {**body, "messages": [{"role": "system", "content": note}, *body.get("messages", [])]}

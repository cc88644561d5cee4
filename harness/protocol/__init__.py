"""Wire-level building blocks shared by every package: chat shapes, the SSE codec and schemas."""

from harness.protocol.chat import (
    CHAT_PARAMS,
    FINISH_REASONS,
    AssembledToolCall,
    ToolCallAssembler,
    answered_tool_calls,
    chunk,
    completion,
    delta_content,
    delta_tool_calls,
    error_envelope,
    first_delta,
    openai_chat_params,
    repeated_tool_call,
)
from harness.protocol.schemas import schema_errors
from harness.protocol.secrets import REDACTED, Redactor, is_secret_header, redact_secret_keys
from harness.protocol.sse import DONE, Deviation, SSEDecoder, SSEEvent, encode_comment, encode_event

__all__ = [
    "CHAT_PARAMS",
    "DONE",
    "FINISH_REASONS",
    "REDACTED",
    "AssembledToolCall",
    "Deviation",
    "Redactor",
    "SSEDecoder",
    "SSEEvent",
    "ToolCallAssembler",
    "answered_tool_calls",
    "chunk",
    "completion",
    "delta_content",
    "delta_tool_calls",
    "encode_comment",
    "encode_event",
    "error_envelope",
    "first_delta",
    "is_secret_header",
    "openai_chat_params",
    "redact_secret_keys",
    "repeated_tool_call",
    "schema_errors",
]

"""Wire-level building blocks shared by every package: chat shapes, the SSE codec, schemas, JSON bodies, URLs
and listening sockets."""

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
    tool_call_name,
)
from harness.protocol.jsonbody import MAX_DEPTH, TOO_DEEP, BodyError, loads, parse_json_body
from harness.protocol.recording import RECORDING_VERSION
from harness.protocol.schemas import schema_errors
from harness.protocol.secrets import REDACTED, Redactor, is_secret_header, redact_secret_keys
from harness.protocol.serving import ListenError, host_port, listen_socket
from harness.protocol.sse import DONE, Deviation, SSEDecoder, SSEEvent, encode_comment, encode_event
from harness.protocol.urls import (
    CHAT_COMPLETIONS,
    UNUSABLE,
    UrlProblem,
    UrlProblemKind,
    base_url_problems,
    completions_url,
    is_http_url,
)

__all__ = [
    "CHAT_COMPLETIONS",
    "CHAT_PARAMS",
    "DONE",
    "FINISH_REASONS",
    "MAX_DEPTH",
    "RECORDING_VERSION",
    "REDACTED",
    "TOO_DEEP",
    "UNUSABLE",
    "AssembledToolCall",
    "BodyError",
    "Deviation",
    "ListenError",
    "Redactor",
    "SSEDecoder",
    "SSEEvent",
    "ToolCallAssembler",
    "UrlProblem",
    "UrlProblemKind",
    "answered_tool_calls",
    "base_url_problems",
    "chunk",
    "completion",
    "completions_url",
    "delta_content",
    "delta_tool_calls",
    "encode_comment",
    "encode_event",
    "error_envelope",
    "first_delta",
    "host_port",
    "is_http_url",
    "is_secret_header",
    "listen_socket",
    "loads",
    "openai_chat_params",
    "parse_json_body",
    "redact_secret_keys",
    "repeated_tool_call",
    "schema_errors",
    "tool_call_name",
]

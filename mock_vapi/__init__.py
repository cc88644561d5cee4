"""A stand-in for Vapi: the requests it sends to a custom LLM (and, later, its REST API)."""

from mock_vapi.context import CallContext
from mock_vapi.request import (
    DEFAULT_CLIENT,
    ClientProfile,
    CustomLLMModel,
    InvalidModelConfig,
    MetadataSendMode,
    VapiRequest,
    build_request,
    completions_url,
    openai_tools,
    url_problems,
)

__all__ = [
    "DEFAULT_CLIENT",
    "CallContext",
    "ClientProfile",
    "CustomLLMModel",
    "InvalidModelConfig",
    "MetadataSendMode",
    "VapiRequest",
    "build_request",
    "completions_url",
    "openai_tools",
    "url_problems",
]

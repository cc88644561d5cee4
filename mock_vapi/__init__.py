"""Everything Vapi does, as a stand-in: the requests it sends to a custom LLM (`request`, `context`), the client
that sends one and records the reply byte by byte (`reader`, `exchange`, `timing`), the call simulator that
holds a call turn by turn (`simulator`), scenario files (`scenarios`), and the REST API (`api`).

Imports nothing of ours but `harness.protocol`; `harness` judges what this package records.
"""

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

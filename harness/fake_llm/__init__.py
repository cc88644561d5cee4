"""The built-in fake OpenAI-compatible LLM: deterministic, offline, with injectable faults."""

from harness.fake_llm.app import RecordedRequest, create_app
from harness.fake_llm.script import DEFAULT_REPLY, FakeLLMConfig, Fault, Quirk

__all__ = ["DEFAULT_REPLY", "FakeLLMConfig", "Fault", "Quirk", "RecordedRequest", "create_app"]

"""The built-in fake OpenAI-compatible LLM: deterministic, offline, with injectable faults."""

from harness.fake_llm.app import RecordedRequest, create_app
from harness.fake_llm.script import DEFAULT_REPLY, FAULTS, QUIRKS, FakeLLMConfig

__all__ = ["DEFAULT_REPLY", "FAULTS", "QUIRKS", "FakeLLMConfig", "RecordedRequest", "create_app"]

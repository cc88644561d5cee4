"""The reference custom-LLM server (built in its own issue)."""

__all__: list[str] = []

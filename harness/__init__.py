"""vapi-harness: will Vapi be able to talk to your custom LLM, and fast enough for a voice call?"""

__version__ = "0.1.0"

__all__ = ["__version__"]

"""The reference custom-LLM server: an aiohttp proxy that serves Vapi's requests from any OpenAI-compatible
upstream (`app`), with hooks (`hooks`), settings (`settings`), JSON-line logs (`logs`), traffic recording for
`check --replay` (`recorder`) and the `vapi-harness proxy` command (`cli`).

Imports nothing of ours but `harness.protocol`; `harness` never imports it (it plugs in through entry points).
"""

__all__: list[str] = []

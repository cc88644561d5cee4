"""`vapi-harness explore`: generated Vapi conversations, sent to a custom LLM and judged like `check`.

`strategies` holds the Hypothesis strategies of every request Vapi could send; `rules` says whether a body
keeps Vapi's rules.
"""

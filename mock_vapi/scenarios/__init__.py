"""Scenario files: the dataclasses a call is scripted with (`model`) and the YAML loader with its JSON Schema
and errors that name file, line and path (`loader`)."""

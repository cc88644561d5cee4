"""Scenario suites: Vapi-shaped conversations in YAML, played by the call simulator and judged per turn.

Modules: `model` (the dataclasses), `loader` (YAML + JSON Schema, errors with file and line), `judge`
(expectations of one turn), `runner` (plays scenarios, feeds the checks and the reports).
"""

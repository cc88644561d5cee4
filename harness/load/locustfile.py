"""The shipped locustfile: `locust -f harness/load/locustfile.py --host http://127.0.0.1:8000/v1`.

Environment: `VAPI_HARNESS_LOAD_PROFILE` (a profile's stage table drives the run, see `harness/load/shape.py`),
`VAPI_HARNESS_API_KEY` (the custom-llm key), `VAPI_HARNESS_LOAD_SCENARIO` (a scenario file each
call plays, tools included), `VAPI_HARNESS_LOAD_THINK_S` (e.g. `1,3`), `VAPI_HARNESS_LOAD_BARGE_IN_RATE` (0 to 1).
"""

from __future__ import annotations

import os
from pathlib import Path

from harness.load.user import VapiCallUser, default_call
from mock_vapi.scenarios.loader import load_file

if os.environ.get("VAPI_HARNESS_LOAD_PROFILE"):  # `vapi-harness load` drives the run by a profile's stages
    from harness.load.shape import ProfileShape  # noqa: F401 (Locust finds the shape among the module's names)


def _think() -> tuple[float, float]:
    low, _, high = os.environ.get("VAPI_HARNESS_LOAD_THINK_S", "1,3").partition(",")
    return float(low), float(high or low)


class VapiCaller(VapiCallUser):
    """A caller playing the configured call again and again."""

    scenario = (
        load_file(Path(os.environ["VAPI_HARNESS_LOAD_SCENARIO"]))
        if os.environ.get("VAPI_HARNESS_LOAD_SCENARIO")
        else default_call()
    )
    api_key = os.environ.get("VAPI_HARNESS_API_KEY") or None
    think_time_s = _think()
    barge_in_rate = float(os.environ.get("VAPI_HARNESS_LOAD_BARGE_IN_RATE", "0"))

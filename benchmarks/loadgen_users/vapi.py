"""Our side of `benchmarks/loadgen.py`: `VapiCallUser` playing one-turn calls back to back, timing every chunk."""

from __future__ import annotations

import os
import random

import gevent
from locust import constant

import benchmarks.loadgen_users.meter  # noqa: F401 (counts CPU and requests from the spawn)
from harness.load.user import VapiCallUser, default_call


class BenchCaller(VapiCallUser):
    """One turn per call, no think time: the same work per stream as the plain user, plus the timing."""

    wait_time = constant(0)
    scenario = default_call(turns=("What time do you open tomorrow?",), first_message="")
    think_time_s = (0.0, 0.0)

    def on_start(self) -> None:
        """Callers arrive at random over one stream's length (the same as the plain user)."""
        gevent.sleep(random.uniform(0, float(os.environ.get("LOADGEN_STAGGER_S", "0"))))

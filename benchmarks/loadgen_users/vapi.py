"""Our side of `benchmarks/loadgen.py`: `VapiCallUser` playing one-turn calls back to back, timing every chunk."""

from __future__ import annotations

from locust import constant

from harness.load.user import CallPlan, VapiCallUser


class BenchCaller(VapiCallUser):
    """One turn per call, no think time: the same work per stream as the plain user, plus the timing."""

    wait_time = constant(0)
    plan = CallPlan()
    think_time_s = (0.0, 0.0)


BenchCaller.plan.turns = ("What time do you open tomorrow?",)
BenchCaller.plan.first_message = None

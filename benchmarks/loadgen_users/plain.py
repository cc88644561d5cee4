"""The baseline for `benchmarks/loadgen.py`: a plain Locust FastHttpUser that sends the same streamed request
and reads the whole stream, timing nothing."""

from __future__ import annotations

import os
import random

import gevent
from locust import FastHttpUser, constant, task

import benchmarks.loadgen_users.meter  # noqa: F401 (counts CPU and requests from the spawn)

BODY = os.environ["LOADGEN_BODY"]


class PlainStreamUser(FastHttpUser):
    """Posts the turn, drains the SSE body."""

    wait_time = constant(0)

    def on_start(self) -> None:
        """Callers arrive at random over one stream's length, as the benchmark's fake upstream paces them."""
        gevent.sleep(random.uniform(0, float(os.environ.get("LOADGEN_STAGGER_S", "0"))))

    @task
    def turn(self) -> None:
        """One stream."""
        with self.client.request(
            "POST", "/chat/completions", data=BODY, headers={"Content-Type": "application/json"}, stream=True,
            catch_response=True, name="turn",
        ) as response:  # fmt: skip
            while response.stream.read(65536):
                pass
            response.success()

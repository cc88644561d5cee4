"""What `benchmarks/loadgen.py` counts, measured inside the Locust process it measures.

From the moment every user runs (Locust's `spawning_complete`) to the end: the process's CPU time (all its
threads) and the requests Locust counted. Sampling `/proc` from outside would take the very core under test
now and then and show up as late chunks. Written as JSON to `LOADGEN_METER` when Locust quits.
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path
from typing import Any

from locust import events
from locust.env import Environment


def _meter(environment: Environment, **_: Any) -> None:
    marks: dict[str, float] = {}

    def spawned(user_count: int, **_: Any) -> None:
        marks["cpu_s"], marks["requests"] = time.process_time(), environment.stats.total.num_requests

    def quitting(**_: Any) -> None:
        path = os.environ.get("LOADGEN_METER")
        if path:
            result = {"cpu_s": time.process_time() - marks.get("cpu_s", 0.0),
                      "requests": environment.stats.total.num_requests - int(marks.get("requests", 0))}  # fmt: skip
            Path(path).write_text(json.dumps(result))

    environment.events.spawning_complete.add_listener(spawned)
    environment.events.quitting.add_listener(quitting)


events.init.add_listener(_meter)

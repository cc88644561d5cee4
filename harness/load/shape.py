"""A Locust load shape that follows a profile's stage table; for `breakpoint`, it stops at the first stage
whose samples break an SLO and records the highest level that held.

Every test starts the profile from its beginning: Locust calls `reset_time` when a test starts (the web UI's
"Start" too), and the table is made again then, from the users, spawn rate and run time of the web UI's form
when it sent them (Locust's `-u`, `-r`, `-t`), else from the environment `vapi-harness load` sets."""

from __future__ import annotations

import os
from typing import Any, ClassVar

from locust import LoadTestShape

from harness.load.profiles import DEFAULT_RUN_TIME_S, Stage, stages
from harness.load.slo import evaluate, parse_slo_lines
from harness.load.stats import LoadStats
from harness.load.user import stats_of

__all__ = ["ProfileShape"]


class ProfileShape(LoadTestShape):
    """Reads `VAPI_HARNESS_LOAD_PROFILE`, `_USERS`, `_RUN_TIME_S`, `_SPAWN_RATE` and `_SLO` (one per line)."""

    use_common_options: ClassVar[bool] = True  # the web UI's form shows users, spawn rate and run time

    def __init__(self) -> None:
        super().__init__()
        self.profile = os.environ.get("VAPI_HARNESS_LOAD_PROFILE", "smoke")
        self.slos = parse_slo_lines(os.environ.get("VAPI_HARNESS_LOAD_SLO"))
        self._start_profile()

    def _options(self) -> tuple[int, float, float | None]:
        """Peak users, run time and spawn rate: Locust's options (the web UI's form) first, then the environment."""
        options = getattr(getattr(self.runner, "environment", None), "parsed_options", None)
        users = getattr(options, "num_users", None) or int(os.environ.get("VAPI_HARNESS_LOAD_USERS", "10"))
        run_time_s = getattr(options, "run_time", None) or float(
            os.environ.get("VAPI_HARNESS_LOAD_RUN_TIME_S") or DEFAULT_RUN_TIME_S[self.profile]
        )
        rate = getattr(options, "spawn_rate", None) or os.environ.get("VAPI_HARNESS_LOAD_SPAWN_RATE")
        return max(1, int(users)), float(run_time_s), float(rate) if rate else None

    def _start_profile(self) -> None:
        users, self.run_time_s, rate = self._options()
        self.table: list[Stage] = stages(self.profile, users, self.run_time_s, rate)
        self.peak_users = max(stage.users for stage in self.table)
        self.stage_index = 0
        self.stage_offsets: dict[str, int] = {}
        self.held: int | None = None
        self.finished = False  # the table ran to its end (or breakpoint stopped it): the test was not cut

    def reset_time(self) -> None:
        """A test starts: the profile runs again from its first stage, with the form's users and run time."""
        super().reset_time()
        self._start_profile()

    def _stage_stats(self, stats: LoadStats) -> dict[str, Any]:
        """What the current stage measured: samples since it began (the master's merged arrays)."""
        if self.stage_offsets.get("resets", 0) != stats.resets:
            self.stage_offsets = {}  # "Reset stats" emptied the arrays: the stage's samples are all there are
        window = LoadStats()
        for name, values in stats.samples.items():
            window.samples[name].extend(values[self.stage_offsets.get(name, 0) :])
        window.turns = stats.turns - self.stage_offsets.get("turns", 0)
        failed = sum(stats.errors.values()) - self.stage_offsets.get("errors", 0)
        if failed:
            window.errors["any"] = failed
        return window.summary()

    def _mark(self, stats: LoadStats) -> None:
        self.stage_offsets = {name: len(values) for name, values in stats.samples.items()}
        self.stage_offsets["turns"] = stats.turns
        self.stage_offsets["errors"] = sum(stats.errors.values())
        self.stage_offsets["resets"] = stats.resets

    def tick(self) -> tuple[int, float] | None:
        """The users and spawn rate for now, or None to stop."""
        now = self.get_run_time()
        while self.stage_index < len(self.table) and now >= self.table[self.stage_index].until_s:
            if self.profile == "breakpoint" and self.runner is not None:
                stats = stats_of(self.runner.environment)
                window = self._stage_stats(stats)
                stage = self.table[self.stage_index]
                # A stage too short to finish a turn is not judged: nothing was measured at that level.
                broken = [r for r in evaluate(self.slos, window) if not r.met] if window["turns"] else []
                if broken:
                    stats.breakpoint = {
                        "held_users": self.held, "broke_at_users": stage.users, "broken": [r.line() for r in broken],
                    }  # fmt: skip
                    self.finished = True
                    return None
                if window["turns"]:
                    self.held = stage.users
                self._mark(stats)
            self.stage_index += 1
        if self.stage_index >= len(self.table):
            if self.profile == "breakpoint" and self.runner is not None:
                stats_of(self.runner.environment).breakpoint = {
                    "held_users": self.held, "broke_at_users": None, "broken": [],
                }  # fmt: skip
            self.finished = True
            return None
        stage = self.table[self.stage_index]
        return stage.users, stage.spawn_rate

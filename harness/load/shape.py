"""A Locust load shape that follows a profile's stage table; for `breakpoint`, it stops at the first stage
whose samples break an SLO and records the highest level that held."""

from __future__ import annotations

import os
from typing import Any

from locust import LoadTestShape

from harness.load.profiles import DEFAULT_RUN_TIME_S, Stage, stages
from harness.load.slo import DEFAULT_SLOS, evaluate, parse_slo
from harness.load.stats import LoadStats
from harness.load.user import stats_of

__all__ = ["ProfileShape"]


class ProfileShape(LoadTestShape):
    """Reads `VAPI_HARNESS_LOAD_PROFILE`, `_USERS`, `_RUN_TIME_S`, `_SPAWN_RATE` and `_SLO` (one per line)."""

    def __init__(self) -> None:
        super().__init__()
        self.profile = os.environ.get("VAPI_HARNESS_LOAD_PROFILE", "smoke")
        users = int(os.environ.get("VAPI_HARNESS_LOAD_USERS", "10"))
        run_time_s = float(os.environ.get("VAPI_HARNESS_LOAD_RUN_TIME_S") or DEFAULT_RUN_TIME_S[self.profile])
        rate = os.environ.get("VAPI_HARNESS_LOAD_SPAWN_RATE")
        self.table: list[Stage] = stages(self.profile, users, run_time_s, float(rate) if rate else None)
        lines = os.environ.get("VAPI_HARNESS_LOAD_SLO", "\n".join(DEFAULT_SLOS)).splitlines()
        self.slos = [parse_slo(line) for line in lines if line.strip()]
        self.stage_index = 0
        self.stage_offsets: dict[str, int] = {}
        self.held: int | None = None

    def _stage_stats(self, stats: LoadStats) -> dict[str, Any]:
        """What the current stage measured: samples since it began (the master's merged arrays)."""
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
            return None
        stage = self.table[self.stage_index]
        return stage.users, stage.spawn_rate

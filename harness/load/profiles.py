"""Load profiles as plain stage tables: each row holds until a time, with a number of concurrent callers.

A profile is scaled by the run's peak `users` and `run_time`: the table gives fractions of both, so
`ramp` at 200 users over 10 minutes and at 10 users over 1 minute have the same shape.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["PROFILES", "Stage", "stages"]

# profile -> rows of (end as a fraction of run_time, users as a fraction of the peak)
PROFILES: dict[str, tuple[tuple[float, float], ...]] = {
    "smoke": ((1.0, 0.0),),  # users is capped to 2 below: a few callers, to see that it works at all
    "steady": ((1.0, 1.0),),
    "ramp": tuple((i / 10, i / 10) for i in range(1, 11)),
    "spike": ((0.4, 0.2), (0.6, 1.0), (1.0, 0.2)),
    "soak": ((1.0, 1.0),),
    "breakpoint": tuple((i / 10, i / 10) for i in range(1, 11)),  # steps up until an SLO breaks
}
DEFAULT_RUN_TIME_S = {
    "smoke": 20.0,
    "steady": 120.0,
    "ramp": 300.0,
    "spike": 180.0,
    "soak": 3600.0,
    "breakpoint": 600.0,
}


@dataclass(frozen=True)
class Stage:
    """Until `until_s` seconds into the run, hold `users` concurrent callers, spawned at `spawn_rate` per second."""

    until_s: float
    users: int
    spawn_rate: float


def stages(profile: str, users: int, run_time_s: float, spawn_rate: float | None = None) -> list[Stage]:
    """The stages of `profile` scaled to `users` and `run_time_s`; `ValueError` for an unknown profile."""
    if profile not in PROFILES:
        raise ValueError(f"unknown profile {profile!r}; choose one of {', '.join(PROFILES)}")
    if users < 1 or run_time_s <= 0:
        raise ValueError("users must be at least 1 and run_time positive")
    rows = PROFILES[profile]
    if profile == "smoke":
        return [Stage(run_time_s, min(users, 2), spawn_rate or 2.0)]
    out = []
    for end, share in rows:
        count = max(1, round(users * share))
        out.append(Stage(round(end * run_time_s, 3), count, spawn_rate or max(1.0, users / 10)))
    return out

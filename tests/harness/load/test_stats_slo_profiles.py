"""The plain parts of load testing: error classes, exact merged percentiles, SLO gates and profile tables."""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import Callable

import pytest

from harness.load.profiles import PROFILES, stages
from harness.load.slo import evaluate, parse_slo, slo_rows
from harness.load.stats import MAX_TIMELINE_ROWS, LoadStats, timeline
from harness.metrics import percentile
from harness.servers import ServerThread
from mock_vapi import CustomLLMModel, build_request
from mock_vapi.exchange import Exchange
from mock_vapi.reader import ReadLimits, new_session, read_into


def _turn(server: ServerThread) -> Exchange:
    model = CustomLLMModel.from_vapi({"provider": "custom-llm", "url": f"{server.url}/v1", "model": "m"})
    request = build_request(model, [{"role": "user", "content": "Hi"}])

    async def go() -> Exchange:
        async with new_session() as session:
            exchange = Exchange(request, time.perf_counter())
            return await read_into(session, exchange, ReadLimits(deadline_s=3, close_grace_s=0.5))

    return asyncio.run(go())


@pytest.mark.slow
@pytest.mark.parametrize(
    ("faults", "expected"),
    [
        ((), None),
        (("status-500",), "http_500"),
        (("no-choices",), "chunks_have_choices"),
        (("invalid-json",), "sse_data_is_json"),
        (("error-chunk",), "chunk_has_no_error"),
        (("no-content",), "first_delta_within_timeout"),
        (("drop-mid-stream",), "body_incomplete"),
    ],
)
def test_errors_are_named_as_check_names_them(
    fake_llm: Callable[..., ServerThread], faults: tuple[str, ...], expected: str | None
) -> None:
    stats = LoadStats()
    assert stats.add(_turn(fake_llm(faults=set(faults)))) == expected
    assert stats.turns == 1 and stats.error_rate == (0.0 if expected is None else 1.0)
    assert bool(stats.samples["ttft_ms"]) == (expected is None)


def test_merged_worker_reports_give_the_exact_percentiles_of_all_samples() -> None:
    rng = random.Random(7)
    values = [rng.uniform(100, 900) for _ in range(5000)]
    master, workers = LoadStats(), [LoadStats(), LoadStats(), LoadStats()]
    for i, value in enumerate(values):
        worker = workers[i % 3]
        worker.samples["ttft_ms"].append(value)
        worker.turns += 1
    workers[1].errors["http_500"] += 50
    workers[1].turns += 50
    for worker in workers:  # two reports each, as Locust sends them periodically
        half = LoadStats()
        half.samples["ttft_ms"].extend(worker.samples["ttft_ms"][:100])
        master.merge(half.drain())
        worker.samples["ttft_ms"] = worker.samples["ttft_ms"][100:]
        master.merge(worker.drain())
    merged = master.distributions()["ttft_ms"]
    assert merged.n == len(values)
    assert merged.percentiles["p99"] == percentile(sorted(values), 0.99)
    assert master.turns == len(values) + 50 and master.errors == {"http_500": 50}
    assert workers[0].turns == 0 and not workers[0].samples["ttft_ms"]  # drained


def test_slos_parse_evaluate_and_say_by_how_much() -> None:
    stats = LoadStats()
    stats.samples["ttft_ms"].extend([100.0] * 90 + [1000.0] * 10)
    stats.turns, stats.errors["http_500"] = 100, 2
    results = evaluate(
        [parse_slo("ttft_p50_ms=200"), parse_slo("ttft_p95_ms=800"), parse_slo("error_rate=0.01")], stats
    )
    assert [r.met for r in results] == [True, False, False]
    assert results[1].line() == "ttft_p95_ms: 1000 ms (limit 800 ms): BROKEN by 200 ms"
    assert results[2].line() == "error_rate: 0.02 (limit 0.01): BROKEN by 0.01"
    missing = evaluate([parse_slo("first_sentence_p99_ms=1500")], stats)[0]
    assert not missing.met and "no samples" in missing.line()
    for bad, message in (
        ("ttft_p95_ms", "not NAME=VALUE"),
        ("ttft_p95_ms=fast", "is not a number"),
        ("latency_p95_ms=5", "unknown SLO"),
        ("ttfb_p95_ms=800", "Did you mean 'ttft_p95_ms'.+where <metric> is one of ttft, first_sentence"),
        ("error_rate=2", "fraction"),
    ):
        with pytest.raises(ValueError, match=message):
            parse_slo(bad)


def test_profiles_scale_to_users_and_run_time() -> None:
    assert set(PROFILES) == {"smoke", "steady", "ramp", "spike", "soak", "breakpoint"}
    assert [(s.until_s, s.users) for s in stages("spike", 100, 100)] == [(40, 20), (60, 100), (100, 20)]
    ramp = stages("ramp", 200, 600)
    assert [s.users for s in ramp] == list(range(20, 201, 20)) and ramp[-1].until_s == 600
    assert stages("smoke", 50, 20)[0].users == 2
    with pytest.raises(ValueError, match="unknown profile 'rampp'"):
        stages("rampp", 10, 10)


def test_the_timeline_counts_turns_failures_and_callers_per_interval_with_exact_ttft() -> None:
    stats = LoadStats()
    start = 1_000.0
    for i, value in enumerate([100.0, 300.0, 200.0, 900.0]):  # two turns in each of the first two seconds
        stats.turns += 1
        stats.times["turn"].append(start + 0.4 * i)
        stats.samples["ttft_ms"].append(value)
        stats.times["ttft"].append(start + 0.4 * i)
    stats.turns += 1
    stats.errors["http_500"] += 1
    stats.times["turn"].append(start + 2.5)
    stats.times["error"].append(start + 2.5)
    rows = timeline(stats, start, 3.0, [(start, 0), (start + 0.5, 2), (start + 2.2, 1)])["rows"]
    assert [r["t_s"] for r in rows] == [0.0, 1.0, 2.0]
    assert [r["turns"] for r in rows] == [3, 1, 1] and [r["errors"] for r in rows] == [0, 0, 1]
    assert [r["users"] for r in rows] == [2, 2, 1]  # the second second: no sample, still 2
    assert rows[0]["ttft_p50_ms"] == 200.0 and rows[1]["ttft_p95_ms"] == 900.0 and rows[2]["ttft_n"] == 0
    long = timeline(stats, start, 3600.0, [])
    assert long["interval_s"] == 30.0 and len(long["rows"]) == MAX_TIMELINE_ROWS


def test_reset_forgets_everything_and_merge_keeps_times_and_one_example_per_class() -> None:
    worker, master = LoadStats(), LoadStats()
    worker.turns, worker.errors["http_500"] = 2, 2
    worker.times["turn"].extend([1.0, 2.0])
    worker.examples["http_500"] = {"class": "http_500", "status": 500, "body": "boom"}
    master.examples["http_500"] = {"class": "http_500", "status": 500, "body": "first"}
    master.merge(worker.drain())
    assert master.turns == 2 and list(master.times["turn"]) == [1.0, 2.0]
    assert master.summary()["error_examples"] == [{"class": "http_500", "status": 500, "body": "first"}]
    master.reset()
    assert master.turns == 0 and not master.errors and not master.times["turn"] and master.resets == 1
    assert master.summary()["error_examples"] == []


def test_an_interrupted_run_judges_no_slo() -> None:
    stats = LoadStats()
    stats.samples["ttft_ms"].extend([100.0] * 10)
    stats.turns = 10
    results = evaluate([parse_slo("ttft_p95_ms=800"), parse_slo("ttft_p95_ms=50")], stats)
    judged, cut = slo_rows(results, interrupted=False), slo_rows(results, interrupted=True)
    assert [r["met"] for r in judged] == [True, False] and judged[1]["verdict"] == "BROKEN by 50 ms"
    assert [r["met"] for r in cut] == [None, None] and {r["verdict"] for r in cut} == {"not judged (interrupted)"}
    assert results[0].line(interrupted=True) == "ttft_p95_ms: 100 ms (limit 800 ms): not judged (interrupted)"

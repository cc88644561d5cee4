"""The plain parts of load testing: error classes, exact merged percentiles, SLO gates and profile tables."""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import Callable

import pytest

from harness.exchange import Exchange
from harness.load.profiles import PROFILES, stages
from harness.load.slo import evaluate, parse_slo
from harness.load.stats import LoadStats
from harness.metrics import percentile
from harness.reader import ReadLimits, new_session, read_into
from harness.servers import ServerThread
from mock_vapi import CustomLLMModel, build_request


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

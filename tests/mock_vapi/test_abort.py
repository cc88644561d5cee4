"""`Abort`: where the reader closes a reply mid-stream, as a caller's barge-in does."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

import pytest

from harness.servers import ServerThread
from mock_vapi import CustomLLMModel, MetadataSendMode, build_request
from mock_vapi.exchange import Exchange, Outcome
from mock_vapi.reader import Abort, ReadLimits, new_session, read_into


def test_each_point_is_reached_when_its_condition_holds() -> None:
    assert Abort.NEVER == Abort() and Abort.NEVER.reached(True, 10_000) is None
    assert Abort.AT_FIRST_DELTA.reached(False, 0) is None
    assert Abort.AT_FIRST_DELTA.reached(True, 0) == "Closed by the client mid-stream (barge-in)"
    after = Abort(after_chars=10)
    assert after.counts_chars and not Abort.AT_FIRST_DELTA.counts_chars
    assert after.reached(True, 9) is None
    assert after.reached(True, 10) == "Closed by the client after 10 characters (barge-in)"
    assert Abort(after_s=0.5).reached(True, 10_000) is None  # a timed point is a bound on the wait, not on bytes


def read(url: str, abort: Abort) -> Exchange:
    model = CustomLLMModel(url=url, model="m", metadata_send_mode=MetadataSendMode.OFF)
    request = build_request(model, [{"role": "user", "content": "What time do you open?"}])

    async def go() -> Exchange:
        async with new_session() as session:
            return await read_into(session, Exchange(request, 0.0), ReadLimits(deadline_s=10), abort=abort)

    return asyncio.run(go())


@pytest.mark.slow
@pytest.mark.parametrize(
    ("abort", "error"),
    [
        (Abort.AT_FIRST_DELTA, "Closed by the client mid-stream (barge-in)"),
        (Abort(after_chars=12), "Closed by the client after 12 characters (barge-in)"),
        (Abort(after_s=0.15), "Closed by the client 150 ms after the request (barge-in)"),
        (Abort(after_s=30, after_chars=12), "Closed by the client after 12 characters (barge-in)"),
    ],
    ids=["first-delta", "chars", "time", "whichever-first"],
)
def test_the_reader_closes_the_reply_at_the_point(
    abort: Abort, error: str, fake_llm: Callable[..., ServerThread]
) -> None:
    exchange = read(f"{fake_llm(chunk_delay_ms=40).url}/v1", abort)
    assert exchange.outcome is Outcome.ABORTED
    assert exchange.error == error
    assert exchange.content_events


@pytest.mark.slow
def test_a_reply_that_ends_first_is_read_whole(fake_llm: Callable[..., ServerThread]) -> None:
    exchange = read(f"{fake_llm().url}/v1", Abort(after_chars=100_000))
    assert exchange.outcome is Outcome.COMPLETE

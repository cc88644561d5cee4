"""The statistics of compare on fixed samples: no timing, no server, the same verdict every time."""

from __future__ import annotations

import random

import pytest

from harness.compare import DEFAULT_THRESHOLD, Threshold, Verdict, judge_change
from harness.compare.stats import difference_interval, min_samples, resampled_percentile
from harness.metrics import percentile


def _gauss(seed: int, n: int, mean: float, sd: float) -> list[float]:
    rng = random.Random(seed)
    return [max(0.0, rng.gauss(mean, sd)) for _ in range(n)]


def test_identical_samples_are_no_change_and_the_interval_holds_0() -> None:
    samples = _gauss(1, 50, 300, 30)
    for stat in ("p50", "p90", "p95"):
        row = judge_change("ttft_ms", stat, samples, list(samples), DEFAULT_THRESHOLD, 0.95)
        assert row.verdict is Verdict.OK
        assert row.change == 0
        assert row.interval is not None and row.interval[0] <= 0 <= row.interval[1]


def test_a_clear_shift_is_a_regression_with_its_interval_above_0() -> None:
    before = _gauss(2, 40, 300, 20)
    after = [v + 400 for v in _gauss(3, 40, 300, 20)]
    row = judge_change("ttft_ms", "p50", before, after, DEFAULT_THRESHOLD, 0.95)
    assert row.verdict is Verdict.REGRESSION
    assert row.interval is not None and 300 < row.interval[0] < row.change < row.interval[1] < 500  # type: ignore[operator]
    assert (row.n_baseline, row.n_new) == (40, 40)
    back = judge_change("ttft_ms", "p50", after, before, DEFAULT_THRESHOLD, 0.95)
    assert back.verdict is Verdict.IMPROVEMENT


def test_noise_alone_is_never_a_regression_even_when_it_crosses_the_threshold() -> None:
    """Pairs of runs drawn from one heavy-tailed distribution (a median of 400 ms): their p90s differ by more than
    the default threshold by chance, and the interval of the change says so."""
    crossed = 0
    for seed in range(20):
        rng_a, rng_b = random.Random(1000 + seed), random.Random(2000 + seed)
        a = [rng_a.lognormvariate(6, 0.4) for _ in range(30)]
        b = [rng_b.lognormvariate(6, 0.4) for _ in range(30)]
        row = judge_change("first_sentence_ms", "p90", a, b, DEFAULT_THRESHOLD, 0.95)
        assert row.verdict is not Verdict.REGRESSION, (seed, row)
        crossed += row.verdict is Verdict.NOT_SIGNIFICANT
    assert crossed >= 3  # the threshold alone would have flagged these


def test_too_few_samples_says_so_instead_of_guessing() -> None:
    few = _gauss(4, 8, 300, 10)
    shifted = [v + 1000 for v in few]
    assert judge_change("ttft_ms", "p95", few, shifted, DEFAULT_THRESHOLD, 0.95).verdict is Verdict.TOO_FEW
    assert judge_change("ttft_ms", "p50", few[:4], shifted, DEFAULT_THRESHOLD, 0.95).verdict is Verdict.TOO_FEW
    assert judge_change("ttft_ms", "p50", few, shifted, DEFAULT_THRESHOLD, 0.95).verdict is Verdict.REGRESSION
    missing = judge_change("ttft_ms", "p50", [], shifted, DEFAULT_THRESHOLD, 0.95)
    assert missing.verdict is Verdict.MISSING and missing.baseline is None and missing.new is not None
    assert [min_samples(q) for q in (0.5, 0.9, 0.95, 0.99)] == [5, 10, 20, 100]


@pytest.mark.parametrize(
    ("threshold", "shift", "verdict"),
    [
        ("20%", 50.0, Verdict.OK),  # +50 of ~302 ms is 16.6%
        ("20%", 90.0, Verdict.REGRESSION),  # 30% of 300
        ("100ms", 90.0, Verdict.OK),
        ("100ms", 120.0, Verdict.REGRESSION),
        ("20%+100ms", 90.0, Verdict.OK),  # over 20% but not over 100 ms
        ("10%+50ms", 60.0, Verdict.REGRESSION),
    ],
)
def test_thresholds_in_percent_and_in_ms(threshold: str, shift: float, verdict: Verdict) -> None:
    before = [300.0 + i * 0.1 for i in range(40)]  # p50 ~302
    after = [v + shift for v in before]
    assert judge_change("ttft_ms", "p50", before, after, Threshold.parse(threshold), 0.95).verdict is verdict


@pytest.mark.parametrize(
    ("text", "message"),
    [("20", "is not a threshold"), ("x%", "'x' is not a number"), ("-5ms", ">= 0"), ("5%+6%", "twice")],
)
def test_a_bad_threshold_is_named(text: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        Threshold.parse(text)
    assert Threshold.parse("20%+50ms") == Threshold(20, 50) and Threshold(20, 50).text == "20%+50ms"


def test_the_same_samples_give_the_same_interval_every_time() -> None:
    a, b = _gauss(5, 200, 300, 40), _gauss(6, 200, 310, 40)
    first = difference_interval(sorted(a), sorted(b), 0.95, 0.95, seed="ttft_ms.p95")
    assert difference_interval(sorted(a), sorted(b), 0.95, 0.95, seed="ttft_ms.p95") == first


def test_the_drawn_percentile_follows_whole_resamples() -> None:
    """The order-statistic draw against resampling the values themselves: the same distribution."""
    values = sorted(_gauss(7, 60, 300, 50))
    rng = random.Random("draw")
    direct = sorted(resampled_percentile(values, 0.9, rng) for _ in range(3000))
    rng = random.Random("resample")
    whole = sorted(percentile(sorted(rng.choices(values, k=len(values))), 0.9) for _ in range(3000))
    for q in (0.1, 0.5, 0.9):
        assert abs(percentile(direct, q) - percentile(whole, q)) < 8  # ms, of a spread of ~60

"""Range methods on known distributions."""

import numpy as np
import pytest

from edgekit.calibration import ranges


def stats_of(values, index=0):
    values = np.asarray(values, np.float64)
    low, high = min(0.0, values.min()), max(0.0, values.max())
    bins = ((values - low) * (ranges.BINS / (high - low))).astype(np.int64)
    counts = np.bincount(np.clip(bins, 0, ranges.BINS - 1), minlength=ranges.BINS)
    return ranges.TensorStats(index, f"t{index}", low, high, counts)


@pytest.fixture(scope="module")
def heavy_tail():
    rng = np.random.default_rng(0)
    # ReLU-like activations: most mass below 1, a few rare outliers up to 20.
    return stats_of(np.concatenate([np.abs(rng.normal(0, 0.3, 200_000)), [20.0, 15.0, 12.0]]))


def test_minmax_keeps_the_calibrated_range(heavy_tail):
    chosen = ranges.choose(ranges.Statistics("k", {0: heavy_tail}), "minmax")[0]
    assert (chosen.low, chosen.high) == (heavy_tail.low, heavy_tail.high)


@pytest.mark.parametrize("method", ["percentile", "kl"])
def test_methods_clip_rare_outliers(heavy_tail, method):
    chosen = ranges.choose(ranges.Statistics("k", {0: heavy_tail}), method)[0]
    assert chosen.low == 0.0
    # The bulk (99.99% below ~1.2) stays inside; the lone outliers at 12-20 do not dictate the scale.
    assert 0.9 < chosen.high < 10.0, (method, chosen)


def test_mse_weighs_outliers_by_their_squared_distance(heavy_tail):
    # Three values clipped from 20 to 2 cost more than the rounding saved over 200,000 small ones, so MSE
    # clips only a little here (it is the method that respects large rare values).
    chosen = ranges.choose(ranges.Statistics("k", {0: heavy_tail}), "mse")[0]
    assert 10.0 < chosen.high < heavy_tail.high


def test_methods_leave_a_uniform_range_alone():
    uniform = stats_of(np.random.default_rng(1).uniform(-2, 2, 100_000))
    for method in ("percentile", "mse", "kl"):
        chosen = ranges.choose(ranges.Statistics("k", {0: uniform}), method)[0]
        assert chosen.low < -1.8 and chosen.high > 1.8, (method, chosen)


def test_zero_stays_inside():
    positive = stats_of(np.random.default_rng(2).uniform(3, 5, 10_000))
    for method in ranges.METHODS:
        chosen = ranges.choose(ranges.Statistics("k", {0: positive}), method)[0]
        assert chosen.low <= 0.0 <= chosen.high


def test_mse_is_lowest_at_its_choice(heavy_tail):
    centres = ranges._centres(heavy_tail)
    best = ranges.mse_range(heavy_tail)
    error = ranges.quantization_mse(centres, heavy_tail.counts, *best)
    assert error <= ranges.quantization_mse(centres, heavy_tail.counts, heavy_tail.low, heavy_tail.high)
    assert error <= ranges.quantization_mse(centres, heavy_tail.counts, 0.0, best.high * 0.5)


def test_unknown_method():
    with pytest.raises(ValueError, match="unknown calibration method 'best'"):
        ranges.choose(ranges.Statistics("k", {}), "best")

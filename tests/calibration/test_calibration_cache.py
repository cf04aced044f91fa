"""CalibrationCache: what one conversion keeps for the next, in memory and in its folder."""

import os

import numpy as np
import pytest

from edgekit.calibration import cache as calibration_cache
from edgekit.calibration import ranges
from edgekit.calibration.cache import CalibrationCache


def statistics(key="abc-123"):
    counts = np.random.default_rng(0).integers(0, 50, ranges.BINS)
    tensors = {0: ranges.TensorStats(0, "t0", -1.5, 2.0, counts),
               7: ranges.TensorStats(7, "x", 0.0, 6.0, counts[::-1].copy())}
    return ranges.Statistics(key, tensors)


def test_statistics_round_trip_through_the_folder(tmp_path):
    kept = statistics()
    CalibrationCache(tmp_path).keep_statistics(kept)
    assert os.listdir(tmp_path) == ["stats-abc-123.npz"]
    loaded = CalibrationCache(tmp_path).statistics("abc-123")     # a new object: nothing in memory
    assert loaded.key == "abc-123" and sorted(loaded.tensors) == [0, 7] and loaded.tensors[7].name == "x"
    for index, tensor in kept.tensors.items():
        assert np.array_equal(loaded.tensors[index].counts, tensor.counts)
        assert (loaded.tensors[index].low, loaded.tensors[index].high) == (tensor.low, tensor.high)
    assert CalibrationCache(tmp_path).statistics("other") is None


def test_calibrated_model_round_trip_through_the_folder(tmp_path):
    folder = tmp_path / "made-on-first-write"
    CalibrationCache(folder).keep_calibrated("k1", b"model bytes")
    assert os.listdir(folder) == ["calibrated-k1.tflite"]
    assert CalibrationCache(folder).calibrated("k1") == b"model bytes"
    assert CalibrationCache(folder).calibrated("k2") is None


def test_memory_only_cache_keeps_what_it_was_given_and_writes_nothing(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    cache = CalibrationCache()
    cache.keep_calibrated("k", b"bytes")
    cache.keep_statistics(statistics("s"))
    assert cache.calibrated("k") == b"bytes" and cache.statistics("s").key == "s"
    assert CalibrationCache().calibrated("k") is None and CalibrationCache().statistics("s") is None
    assert os.listdir(tmp_path) == []


def test_a_model_without_fingerprint_is_never_cached(tmp_path):
    cache = CalibrationCache(tmp_path)
    cache.keep_calibrated(None, b"bytes")
    assert cache.calibrated(None) is None and os.listdir(tmp_path) == []
    assert calibration_cache.calibration_key(None, "digest", 127.0, 128.0) is None
    assert calibration_cache.calibration_key("f", "digest", 127.0, 128.0) == "f-digest-127-128"


def test_model_fingerprint_follows_weights_and_export_settings():
    keras = pytest.importorskip("keras")

    def model(bias):
        inputs = keras.Input((4, 4, 3), batch_size=1, name="image")
        layer = keras.layers.Dense(2, name="head")
        built = keras.Model(inputs, layer(inputs), name="same")
        layer.set_weights([np.ones((3, 2), np.float32), np.full(2, bias, np.float32)])
        return built

    first = calibration_cache.model_fingerprint(model(0.0), (4, 4, 3))
    assert first == calibration_cache.model_fingerprint(model(0.0), (4, 4, 3))
    assert first != calibration_cache.model_fingerprint(model(0.5), (4, 4, 3))
    assert first != calibration_cache.model_fingerprint(model(0.0), (4, 4, 3), (25, 1e-8, 0.5))
    assert calibration_cache.model_fingerprint(object(), (4, 4, 3)) is None


def test_statistics_key_names_model_and_pictures():
    key = calibration_cache.statistics_key(b"model", "pics")
    assert key.endswith("-pics") and key != calibration_cache.statistics_key(b"other", "pics")

"""What one conversion leaves for the next: the calibrated float model and the per-tensor histograms.

Calibrating (the converter's own pass over the pictures) and histogramming (a second pass, `ranges.collect`)
are the slow parts of a conversion, and neither depends on the range method. A `CalibrationCache` keeps both
for as long as the caller keeps the object, and in its folder when it has one, so that trying another method
(`--calibration kl` after `mse`), in this process or a later one, costs no pass over the pictures.

Keys say what a result depends on. The calibrated model: the Keras model (architecture, weights), the export
settings (input shape, detection post-processing) and the preprocessed pictures with their normalisation.
The histograms: the calibrated model's bytes and the pictures.
"""

import hashlib
import os

import numpy as np

from edgekit.calibration.ranges import Statistics, TensorStats
from edgekit.files import atomic_path, write_atomic


def model_fingerprint(model, shape, detection=None):
    """A hash of a Keras model's architecture and weights and of the export settings (`shape`, the detection
    settings as a plain tuple), or None when the model cannot describe itself (then nothing is cached)."""
    try:
        digest = hashlib.sha256(model.to_json().encode("utf-8"))
    except (TypeError, ValueError, NotImplementedError, AttributeError):
        return None
    digest.update(repr((shape, detection)).encode())
    for weight in model.weights:
        digest.update(weight.name.encode())
        digest.update(np.ascontiguousarray(np.asarray(weight)).tobytes())
    return digest.hexdigest()[:20]


def calibration_key(fingerprint, pictures_digest, mean, std):
    """The key of a calibrated model, or None for a model without a fingerprint."""
    return f"{fingerprint}-{pictures_digest}-{mean:g}-{std:g}" if fingerprint else None


def statistics_key(calibrated_bytes, pictures_digest):
    """The key of the histograms of one calibrated model over one set of pictures."""
    return hashlib.sha256(bytes(calibrated_bytes)).hexdigest()[:16] + "-" + pictures_digest


class CalibrationCache:
    """Calibrated models and histograms by key: in memory, and in `folder` (created on the first write) when
    given. Keep one object across conversions to reuse their passes; a new object on the same folder finds
    what an earlier one (or process) wrote there."""

    def __init__(self, folder=None):
        self.folder = os.fspath(folder) if folder else None
        self._calibrated = {}
        self._statistics = {}

    def calibrated(self, key):
        """The calibrated model bytes kept under `key`, or None (always for a None key)."""
        return None if key is None else self._recall(self._calibrated, key, self._read_calibrated)

    def keep_calibrated(self, key, model_bytes):
        if key is None:
            return
        self._calibrated[key] = model_bytes
        if self.folder:
            os.makedirs(self.folder, exist_ok=True)
            write_atomic(self._calibrated_path(key), model_bytes)

    def statistics(self, key):
        """The `ranges.Statistics` kept under `key`, or None."""
        return self._recall(self._statistics, key, self._read_statistics)

    def keep_statistics(self, statistics):
        self._statistics[statistics.key] = statistics
        if self.folder:
            self._write_statistics(statistics)

    @staticmethod
    def _recall(kept, key, read):
        """kept[key], read from the folder (`read(key)`) the first time; None when neither holds it."""
        if key not in kept:
            found = read(key)
            if found is None:
                return None
            kept[key] = found
        return kept[key]

    # --- the folder: calibrated-<key>.tflite and stats-<key>.npz -------------------------------------------

    def _calibrated_path(self, key):
        return os.path.join(self.folder, f"calibrated-{key}.tflite")

    def _statistics_path(self, key):
        return os.path.join(self.folder, f"stats-{key}.npz")

    def _read_calibrated(self, key):
        if not self.folder or not os.path.isfile(self._calibrated_path(key)):
            return None
        with open(self._calibrated_path(key), "rb") as f:
            return f.read()

    def _write_statistics(self, statistics):
        os.makedirs(self.folder, exist_ok=True)
        arrays = {}
        for index, s in statistics.tensors.items():
            arrays[f"c{index}"] = s.counts
            arrays[f"r{index}"] = np.array([s.low, s.high])
            arrays[f"n{index}"] = np.array(s.name)
        with atomic_path(self._statistics_path(statistics.key)) as temporary:
            np.savez_compressed(temporary, **arrays)

    def _read_statistics(self, key):
        """The histograms in the folder for `key`, or None (none there, or a file that cannot be read)."""
        if not self.folder or not os.path.isfile(self._statistics_path(key)):
            return None
        try:
            with np.load(self._statistics_path(key)) as data:
                indices = sorted(int(k[1:]) for k in data.files if k.startswith("c"))
                tensors = {i: TensorStats(i, str(data[f"n{i}"]), float(data[f"r{i}"][0]), float(data[f"r{i}"][1]),
                                          data[f"c{i}"]) for i in indices}
        except (OSError, ValueError, KeyError):
            return None
        return Statistics(key, tensors)

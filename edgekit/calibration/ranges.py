"""Activation ranges: per-tensor histograms of a calibrated float model, and the methods that pick a range.

The converter's calibrator records each activation's min and max (the `minmax` method). To do better we
run the same calibrated float model once more over the same pictures, histogram every activation inside
its recorded [min, max], and let a method choose a narrower range:
  percentile  keep the central 99.99% of values (clip the rarest tails)
  mse         the range whose 8-bit quantization has the least expected squared error
  kl          the range whose 8-bit quantized distribution is closest in KL divergence (TensorRT's entropy
              calibration, Migacz, "8-bit Inference with TensorRT", GTC 2017; made two-sided here by
              scaling [min, max] towards zero)
Wu et al., "Integer Quantization for Deep Learning Inference: Principles and Empirical Evaluation"
(arXiv:2004.09602) compare max, entropy and percentile calibration. The histograms of one model and picture
set are one `Statistics`; `edgekit.calibration.cache` keeps them, so a second method costs no second pass.
"""

import os
import warnings
from collections import namedtuple

import numpy as np

METHODS = ("minmax", "percentile", "mse", "kl")
BINS = 2048
LEVELS = 256                 # 8-bit
PERCENTILE = 99.99
# Candidate shrink factors of [min, max] for mse and kl: dense near 1, down to 5% of the range.
CANDIDATES = np.unique(np.concatenate([np.geomspace(0.05, 1.0, 120), np.linspace(0.9, 1.0, 41)]))
# Values taken per tensor per picture for the histogram: a deterministic stride through the tensor keeps
# the pass cheap on big feature maps; the extremes are already known from the calibrator.
MAX_VALUES = 1 << 15

# index: tensor index in the calibrated model; low/high: the calibrator's range; counts: histogram over it.
TensorStats = namedtuple("TensorStats", "index name low high counts")
Statistics = namedtuple("Statistics", "key tensors")     # tensors: {index: TensorStats}
Range = namedtuple("Range", "low high")


def _sampled(values):
    flat = values.reshape(-1)
    step = max(1, flat.size // MAX_VALUES)
    return flat[::step]


def tensor_reader(model_bytes):
    """A LiteRT interpreter on `model_bytes` that keeps every intermediate tensor readable after invoke()."""
    from ai_edge_litert.interpreter import Interpreter

    with warnings.catch_warnings():
        # LiteRT warns that keeping every tensor is for debugging; reading every tensor is the point here.
        warnings.simplefilter("ignore", UserWarning)
        interpreter = Interpreter(model_content=bytes(model_bytes), experimental_preserve_all_tensors=True,
                                  num_threads=os.cpu_count())
    interpreter.allocate_tensors()
    return interpreter


def collect(calibrated_bytes, inputs, tensor_ranges, progress=None):
    """Histogram every tensor of `tensor_ranges` ({index: (name, low, high)}) over `inputs` (float batches)."""
    interpreter = tensor_reader(calibrated_bytes)
    input_index = interpreter.get_input_details()[0]["index"]
    counts = {i: np.zeros(BINS, np.int64) for i in tensor_ranges}
    for sample in inputs:
        interpreter.set_tensor(input_index, sample)
        interpreter.invoke()
        for index, (_, low, high) in tensor_ranges.items():
            if high <= low:
                continue
            values = _sampled(interpreter.get_tensor(index)).astype(np.float32)
            bins = ((values - low) * (BINS / (high - low))).astype(np.int64)
            counts[index] += np.bincount(np.clip(bins, 0, BINS - 1), minlength=BINS)
        if progress is not None:
            progress.update()
    if progress is not None:
        progress.close()
    return {i: TensorStats(i, name, float(low), float(high), counts[i])
            for i, (name, low, high) in tensor_ranges.items()}


# --- methods: each maps one TensorStats to a Range ------------------------------------------------------

def _centres(s):
    width = (s.high - s.low) / BINS
    return s.low + (np.arange(BINS) + 0.5) * width


def _candidate(s, alpha):
    """[min, max] shrunk towards zero by alpha; zero stays inside, as TFLite's asymmetric ranges need."""
    return Range(float(min(0.0, s.low * alpha)), float(max(0.0, s.high * alpha)))


def percentile_range(s, percentile=PERCENTILE):
    total = s.counts.sum()
    if not total:
        return Range(s.low, s.high)
    cumulative = np.cumsum(s.counts) / total
    tail = (100.0 - percentile) / 100.0
    width = (s.high - s.low) / BINS
    low_bin = int(np.searchsorted(cumulative, tail))
    high_bin = int(np.searchsorted(cumulative, 1.0 - tail))
    low = s.low + low_bin * width
    high = s.low + (high_bin + 1) * width
    return Range(min(0.0, max(low, s.low)), max(0.0, min(high, s.high)))


def quantization_mse(centres, counts, low, high):
    """Expected squared error of 8-bit uniform quantization over [low, high] for this histogram."""
    step = (high - low) / (LEVELS - 1)
    clipped = np.clip(centres, low, high)
    rounding = np.where((centres >= low) & (centres <= high), step * step / 12.0, 0.0)
    return float(np.sum(counts * ((centres - clipped) ** 2 + rounding)))


def mse_range(s):
    centres = _centres(s)
    errors = [quantization_mse(centres, s.counts, *_candidate(s, a)) for a in CANDIDATES]
    return _candidate(s, CANDIDATES[int(np.argmin(errors))])


def _kl_cost(centres, counts, low, high):
    """TensorRT's entropy criterion over the bins inside [low, high]: P is the clipped distribution (the
    outliers land in the edge bins), Q the in-range values quantized to 256 levels and spread back evenly
    over the bins each level covers. Q never sees the outliers, which is what penalises a too-narrow range."""
    inside = (centres >= low) & (centres <= high)
    if not inside.any():
        return np.inf
    first, last = int(np.argmax(inside)), len(inside) - 1 - int(np.argmax(inside[::-1]))
    kept = counts[first:last + 1].astype(np.float64)
    p = kept.copy()
    p[0] += counts[:first].sum()
    p[-1] += counts[last + 1:].sum()
    step = (high - low) / (LEVELS - 1)
    level = np.round((centres[first:last + 1] - low) / step).astype(np.int64)
    occupied = kept > 0
    mass = np.bincount(level, weights=kept, minlength=LEVELS)
    cells = np.bincount(level, weights=occupied.astype(np.float64), minlength=LEVELS)
    q = np.where(occupied, mass[level] / np.maximum(cells[level], 1), 0.0)
    total_p, total_q = p.sum(), q.sum()
    if not total_p or not total_q:
        return np.inf
    p, q = p / total_p, q / total_q
    nonzero = p > 0
    # A bin P has and Q lacks (an edge bin holding only outliers) costs as if Q had a tiny mass there.
    return float(np.sum(p[nonzero] * np.log(p[nonzero] / np.maximum(q[nonzero], 1e-8))))


def kl_range(s):
    # A window narrower than 256 histogram bins has at most one bin per level, where Q equals P and the
    # divergence is trivially 0; TensorRT starts its search at 128 bins for the same reason.
    wide = [a for a in CANDIDATES if a * BINS >= LEVELS]
    centres = _centres(s)
    # ReLU outputs put half their values at exactly 0. Zero is always represented exactly, but that spike
    # would dominate the divergence and reward narrow ranges (fewer bins per level), so it is left out.
    counts = s.counts.copy()
    if s.low < 0.0 < s.high or s.low == 0.0:
        counts[min(int(-s.low / (s.high - s.low) * BINS), BINS - 1)] = 0
    costs = [_kl_cost(centres, counts, *_candidate(s, a)) for a in wide]
    return _candidate(s, wide[int(np.argmin(costs))])


def choose(statistics, method):
    """{tensor index: Range} for every histogrammed tensor, by `method`."""
    if method not in METHODS:
        raise ValueError(f"unknown calibration method {method!r}: use one of {', '.join(METHODS)}")
    pick = {"minmax": lambda s: Range(s.low, s.high), "percentile": percentile_range, "mse": mse_range,
            "kl": kl_range}[method]
    return {i: pick(s) for i, s in statistics.tensors.items() if s.counts.sum()}

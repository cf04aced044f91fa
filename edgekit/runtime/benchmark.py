"""`edgekit bench` as a library function, and the latency statistics the camera and eval report too."""

import os
import tempfile
import time
from collections import namedtuple

import numpy as np

from edgekit.errors import EdgekitError
from edgekit.runtime import ensemble, images
from edgekit.runtime.interpreter import invoke, open_model
from edgekit.runtime.pipeline import Runner

LatencyStats = namedtuple("LatencyStats", "n min_ms p50_ms p90_ms p99_ms max_ms mean_ms fps")
"""Latencies summed up: their count, milliseconds to the microsecond (finer differences of perf_counter
readings are noise), and frames per second to two places (None when the mean is 0)."""

BenchReport = namedtuple("BenchReport", "model threads warmup image invoke pipeline")
"""What `bench_model` measured: model (a pipeline.ModelInfo), interpreter threads, untimed warm-up runs,
the picture timed through the pipeline (its path, or GENERATED_PICTURE), and the `LatencyStats` of invoke
alone and of the whole pipeline."""

# Timed runs, and untimed runs before them, unless asked otherwise.
DEFAULT_ITERATIONS, DEFAULT_WARMUP = 100, 10
# What BenchReport.image says when no picture was given (see _write_bench_picture).
GENERATED_PICTURE = "generated 640x480 JPEG"


def latency_stats(samples_ms):
    """`LatencyStats` of latencies in milliseconds."""
    values = np.asarray(samples_ms, dtype=np.float64)
    mean = float(values.mean())
    p50, p90, p99 = (round(float(np.percentile(values, q)), 3) for q in (50, 90, 99))
    return LatencyStats(int(values.size), round(float(values.min()), 3), p50, p90, p99,
                        round(float(values.max()), 3), round(mean, 3), round(1000.0 / mean, 2) if mean > 0 else None)


def _write_bench_picture(folder):
    """A generated 640x480 JPEG, so the pipeline timing includes a real decode like a camera frame's."""
    from PIL import Image

    width, height = 640, 480
    ramp = np.linspace(0, 255, width, dtype=np.float32)
    pixels = np.stack([np.tile(ramp, (height, 1)), np.tile(ramp[::-1], (height, 1)),
                       np.full((height, width), 128.0)], axis=-1).astype(np.uint8)
    path = os.path.join(folder, "bench.jpg")
    Image.fromarray(pixels).save(path, quality=90)
    return path


def check_bench_counts(iterations, warmup):
    if iterations < 1 or warmup < 0:
        raise EdgekitError("bench needs -n of at least 1 and --warmup of 0 or more")


def _timed(run, runs, warmup):
    """Milliseconds of each of `runs` calls of `run()` after the first `warmup`."""
    samples = []
    for i in range(warmup + runs):
        start = time.perf_counter()
        run()
        elapsed = (time.perf_counter() - start) * 1000.0
        if i >= warmup:
            samples.append(elapsed)
    return samples


def time_bench(predictor, invoke_all, iterations, warmup, image=None):
    """The timed half of `edgekit bench` for anything with `mode` and `run_loaded(image)` (a Runner, an
    ensemble): the whole pipeline on one picture, then `invoke_all()` alone. Returns the `LatencyStats`
    (invoke, pipeline)."""
    with tempfile.TemporaryDirectory() as folder:
        picture = image or _write_bench_picture(folder)
        pipeline_ms = _timed(lambda: predictor.run_loaded(images.load_image(picture, predictor.mode)), iterations,
                             warmup)
    invoke_ms = _timed(invoke_all, iterations, warmup)
    return latency_stats(invoke_ms), latency_stats(pipeline_ms)


def bench_model(model, device="auto", iterations=DEFAULT_ITERATIONS, warmup=DEFAULT_WARMUP, threads=None, image=None):
    """Time `model` (or an ensemble file): a `BenchReport`."""
    check_bench_counts(iterations, warmup)
    if ensemble.is_ensemble_file(model):
        predictor = ensemble.open_ensemble(model, device, threads)
        invoke_all = predictor.invoke_all
    else:
        opened = open_model(model, device=device, num_threads=threads)
        predictor = Runner(opened)
        invoke_all = lambda: invoke(opened)  # noqa: E731
    invoke_stats, pipeline_stats = time_bench(predictor, invoke_all, iterations, warmup, image)
    return BenchReport(predictor.info, threads or os.cpu_count(), warmup, str(image) if image else GENERATED_PICTURE,
                       invoke_stats, pipeline_stats)

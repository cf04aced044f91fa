"""`edgekit bench` as a library function, and the latency statistics the camera and eval report too."""

import os
import tempfile
import threading
import time
from collections import namedtuple

import numpy as np

from edgekit.errors import EdgekitError
from edgekit.runtime import ensemble, images
from edgekit.runtime.interpreter import invoke, open_model, print_notice
from edgekit.runtime.pipeline import Runner
from edgekit.runtime.pipelining import PipelinedModelRunner

LatencyStats = namedtuple("LatencyStats", "n min_ms p50_ms p90_ms p99_ms max_ms mean_ms fps")
"""Latencies summed up: their count, milliseconds to the microsecond (finer differences of perf_counter
readings are noise), and frames per second to two places (None when the mean is 0)."""

BenchReport = namedtuple("BenchReport", "model threads warmup image invoke pipeline")
"""What `bench_model` measured: model (a pipeline.ModelInfo), interpreter threads, untimed warm-up runs,
the picture timed through the pipeline (its path, or GENERATED_PICTURE), and the `LatencyStats` of invoke
alone and of the whole pipeline."""

SegmentsBenchReport = namedtuple("SegmentsBenchReport", "model threads warmup image invoke pipeline segments stream")
"""What `bench_segments` measured on a model cut into segments: as `BenchReport` (invoke: the whole chain, the
segments one after the other in one thread; pipeline: a picture through it), plus each segment's
`SegmentLatency` and the `StreamReport` of the segments pipelined."""

SegmentLatency = namedtuple("SegmentLatency", "path device invoke")
"""One segment: its file, where it ran, and the `LatencyStats` of its invoke alone (timed inside the chain)."""

StreamReport = namedtuple("StreamReport", "inputs seconds fps chain_fps speedup")
"""A stream of `inputs` through `PipelinedModelRunner`, one thread per segment, after the warm-up: seconds
from the first result timed to the last, results per second, the chain's rate one after the other (1000 / its
mean invoke ms) and their ratio."""

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


def bench_segments(paths, device="auto", iterations=DEFAULT_ITERATIONS, warmup=DEFAULT_WARMUP, threads=None,
                   image=None, notice=print_notice):
    """Time a model cut into segments (a folder, or the segment files): a `SegmentsBenchReport`.

    The chain (`segmented.ChainedInterpreter`) is timed like one model, each segment's invoke within it, then
    `iterations` inputs (the bench picture, prepared) stream through `PipelinedModelRunner`, every segment on
    its own thread and device, as a camera or a folder of pictures would feed it."""
    from edgekit.runtime import segmented

    check_bench_counts(iterations, warmup)
    opened = segmented.open_segments(paths, device=device, num_threads=threads, notice=notice)
    requested = paths if isinstance(paths, (str, os.PathLike)) else ", ".join(map(str, paths))
    chained = segmented.chained_model(opened, requested=str(requested))
    chain = chained.interpreter
    runner = Runner(chained)
    per_segment = []

    def invoke_chain():
        invoke(chained)
        per_segment.append(chain.last_invoke_ms)

    invoke_stats, pipeline_stats = time_bench(runner, invoke_chain, iterations, warmup, image)
    segments = [SegmentLatency(str(path), where, latency_stats([run[k] for run in per_segment[warmup:]]))
                for k, (path, where) in enumerate(zip(opened.paths, opened.devices))]
    # The input the pipeline left in the chain: the bench picture, prepared as `edgekit run` prepares it.
    inputs = {d["name"]: chain.get_tensor(d["index"]) for d in chain.get_input_details()}
    seconds = time_stream(opened.interpreters, inputs, iterations, warmup)
    fps = round(iterations / seconds, 2) if seconds > 0 else None
    chain_fps = invoke_stats.fps
    stream = StreamReport(iterations, round(seconds, 6), fps, chain_fps,
                          round(fps / chain_fps, 3) if fps and chain_fps else None)
    used_threads = threads or max(1, (os.cpu_count() or 1) // len(opened.segments))
    return SegmentsBenchReport(runner.info, used_threads, warmup, str(image) if image else GENERATED_PICTURE,
                               invoke_stats, pipeline_stats, segments, stream)


def time_stream(interpreters, inputs, count, warmup=0):
    """Seconds that `count` results take to come out of a `PipelinedModelRunner` over `interpreters` fed
    `inputs` ({name: array}) without pause, timed from the last of `warmup` untimed results (the pipe is full
    by then, so this is its steady rate). A failing segment raises its PipelineRunError here."""
    with PipelinedModelRunner(interpreters) as runner:
        # A few inputs waiting are enough to keep the first segment busy; more would only hold memory.
        runner.set_input_queue_size(2)

        def produce():
            try:
                for _ in range(warmup + count):
                    runner.push(inputs)
                runner.push({})
            except EdgekitError:
                pass  # the pipe stopped: pop() below raises why

        producer = threading.Thread(target=produce, name="edgekit-bench-producer", daemon=True)
        producer.start()
        try:
            for _ in range(warmup):
                runner.pop()
            start = time.perf_counter()
            for _ in range(count):
                runner.pop()
            seconds = time.perf_counter() - start
            runner.pop()  # None: the end of the stream
        finally:
            runner.close()
            producer.join()
    return seconds

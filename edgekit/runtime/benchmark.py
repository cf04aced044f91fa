"""`edgekit bench` as a library function, and the latency statistics the camera and eval report too."""

import os
import tempfile
import time

import numpy as np

from edgekit.errors import EdgekitError
from edgekit.runtime import ensemble, images
from edgekit.runtime.inference import model_document
from edgekit.runtime.interpreter import invoke, open_model
from edgekit.runtime.pipeline import Runner


def latency_stats(samples_ms):
    values = np.asarray(samples_ms, dtype=np.float64)
    mean = float(values.mean())
    return {"n": int(values.size), "min_ms": round(float(values.min()), 3),
            **{f"p{q}_ms": round(float(np.percentile(values, q)), 3) for q in (50, 90, 99)},
            "max_ms": round(float(values.max()), 3), "mean_ms": round(mean, 3),
            "fps": round(1000.0 / mean, 2) if mean > 0 else None}


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


def time_bench(predictor, invoke_all, iterations, warmup, image=None):
    """The timed half of `edgekit bench` for anything with `mode` and `run_loaded(image)` (a Runner, an
    ensemble): the whole pipeline on one picture, then `invoke_all()` alone. Returns the document's
    warmup / image / invoke / pipeline entries."""
    invoke_ms, pipeline_ms = [], []
    with tempfile.TemporaryDirectory() as folder:
        picture = image or _write_bench_picture(folder)
        for i in range(warmup + iterations):
            start = time.perf_counter()
            predictor.run_loaded(images.load_image(picture, predictor.mode))
            elapsed = (time.perf_counter() - start) * 1000.0
            if i >= warmup:
                pipeline_ms.append(elapsed)
    for i in range(warmup + iterations):
        start = time.perf_counter()
        invoke_all()
        elapsed = (time.perf_counter() - start) * 1000.0
        if i >= warmup:
            invoke_ms.append(elapsed)
    return {"warmup": warmup, "image": str(image) if image else "generated 640x480 JPEG",
            "invoke": latency_stats(invoke_ms), "pipeline": latency_stats(pipeline_ms)}


def bench_model(model, device="auto", iterations=100, warmup=10, threads=None, image=None):
    if ensemble.is_ensemble_file(model):
        return ensemble.bench_model(model, device, iterations, warmup, threads, image)
    check_bench_counts(iterations, warmup)
    opened = open_model(model, device=device, num_threads=threads)
    runner = Runner(opened)
    return dict(model_document(opened, runner), threads=threads or os.cpu_count(),
                **time_bench(runner, lambda: invoke(opened), iterations, warmup, image))

"""Run one model over many images, in this process or over worker processes.

Each worker opens its own interpreter (interpreters cannot be shared across processes) from a small
picklable `ModelSpec`, and sends back per-image records small enough to pickle cheaply: score vectors,
boxes, or a segmentation's per-class pixel counts (never whole masks). On Linux workers are forked: they
start in milliseconds and need no `if __name__ == "__main__"` guard in the caller's script (spawn does);
the parent's interpreter threads are copied idle and never used, since each worker opens its own.
Elsewhere (macOS, Windows) they are spawned, those systems' safe default.
"""

import multiprocessing
import os
import sys
import time
from collections import namedtuple

import numpy as np

from edgekit.evaluation import datasets, metrics
from edgekit.progress import Progress
from edgekit.runtime import ensemble as ensemble_mod
from edgekit.runtime.adapters import common, segment
from edgekit.runtime.interpreter import model_paths, names_segments, open_model, set_name
from edgekit.runtime.pipeline import Runner, clipped_box
from edgekit.runtime.segmented import find_segments
from edgekit.runtime.tasks import CLASSIFICATION, DETECTION

ModelSpec = namedtuple("ModelSpec", "path device threads task resize")
"""What a worker opens: path (a model or ensemble file, a folder of segments, or a tuple of segment files),
device, interpreter threads, task and resize (None: the model's)."""
Run = namedtuple("Run", "records seconds workers threads device ran floor")
"""Per-image records in sample order, wall-clock seconds (start-up included), where it ran, and the
smallest probability its scores can express (metrics.agreement's floor)."""

# One opened model per process: the worker's own, set by _init.
_state = {}


def open_predictor(spec, quiet=False):
    """A Runner for a .tflite file, an Ensemble for an ensemble file; both have run_image(path)."""
    # Workers stay quiet: n copies of "running the CPU twin" would say nothing new; the table's device
    # column says where the model ran.
    kwargs = {"notice": lambda message: None} if quiet else {}
    if isinstance(spec.path, str) and ensemble_mod.is_ensemble_file(spec.path):
        return ensemble_mod.open_ensemble(spec.path, spec.device, spec.threads, top_k=1, **kwargs)
    opened = open_model(spec.path, device=spec.device, num_threads=spec.threads, **kwargs)
    # Threshold 0: mAP needs every detection the model makes, however unsure.
    return Runner(opened, task=spec.task, top_k=1, threshold=0.0, resize=spec.resize)


def output_floor(runner):
    """Half the quantization step of a classifier's output (0 for a float output): the probability a
    stored 0 stands for at most."""
    scale = common.output_details(runner.interpreter, 0)["quantization"][0]
    return float(scale) / 2 if scale else 0.0


def _where(predictor):
    """(device, model file(s) that ran, score floor) of an opened predictor."""
    if hasattr(predictor, "runners"):
        floors = [output_floor(r) for r in predictor.runners]
        # A class every member stores as 0 has a mean probability under the weighted mean of the floors.
        floor = float(np.dot(predictor.weights, floors)) if predictor.spec.combine == "mean" else 0.0
        return ",".join(predictor.devices), [str(o.path) for o in predictor.opened], floor
    floor = output_floor(predictor) if predictor.task == CLASSIFICATION else 0.0
    return predictor.opened.device, predictor.info.ran, floor


def predict(predictor, sample):
    """One image's record: (scores, ms) / (detections, ms) / ((counts, correct, pixels, iou), ms)."""
    return record(predictor, sample, predictor.run_image(sample.image))


def predict_all(predictor, samples):
    """The records of every sample, in order: through `Runner.run_images` when the predictor has it (the next
    picture decoded while this one runs, and a model in segments pipelined over its devices), else one by one."""
    if not hasattr(predictor, "run_images"):
        for sample in samples:
            yield predict(predictor, sample)
        return
    for sample, result in zip(samples, predictor.run_images([sample.image for sample in samples])):
        yield record(predictor, sample, result)


def record(predictor, sample, result):
    """The record of `sample` from its `pipeline.ImageResult`."""
    if predictor.task == CLASSIFICATION:
        return np.asarray(result.scores, dtype=np.float32), result.latency_ms
    if predictor.task == DETECTION:
        return [(o.id, float(o.score), _clipped_xywh(o.bbox, result.size)) for o in result.objects], result.latency_ms
    truth = datasets.read_mask(sample.target)
    mask = segment.resize_mask(result.mask, (truth.shape[1], truth.shape[0]))
    counts, correct, pixels = metrics.mask_counts(mask, truth, datasets.IGNORE_ID)
    return (counts, correct, pixels, segment.mask_iou(mask, truth)), result.latency_ms


def _clipped_xywh(bbox, size):
    """COCO's [x, y, width, height] of a box clipped to the picture, as `edgekit run` reports it."""
    box = clipped_box(bbox, size)
    return [box.xmin, box.ymin, box.width, box.height]


def _init(spec):
    try:
        _state["predictor"] = open_predictor(spec, quiet=True)
    except Exception as e:  # noqa: BLE001 - re-raised on the first job: a failing initializer hangs a Pool
        _state["error"] = e


def _work(job):
    index, sample = job
    if "error" in _state:
        raise _state["error"]
    predictor = _state["predictor"]
    return index, predict(predictor, sample), _where(predictor)


def default_threads(workers):
    """Interpreter threads per worker: the cores shared out, at least one."""
    return max(1, (os.cpu_count() or 1) // max(1, workers))


def _compiled(path):
    from edgekit.tflite.model import read_model

    if names_segments(path):
        return any(read_model(p).is_edgetpu_compiled for p in find_segments(model_paths(path)))
    if ensemble_mod.is_ensemble_file(path):
        return any(_compiled(m.path) for m in ensemble_mod.read_ensemble(path).members if os.path.isfile(m.path))
    return read_model(path).is_edgetpu_compiled


def edgetpu_workers(spec, workers):
    """At most one worker per Edge TPU for a compiled model: a device serves one process at a time, and a
    second worker would fall back to the CPU twin and mix CPU figures into Edge TPU ones. A model in segments
    compiled for the Edge TPU gets one worker, whose pipeline over the segments' devices is its parallelism."""
    if workers == 1 or spec.device == "cpu" or not _compiled(spec.path):
        return workers
    from edgekit.runtime import edgetpu

    found = len(edgetpu.list_edge_tpus())
    if not found:
        return workers  # every worker runs the CPU twin
    if names_segments(spec.path):
        print(f"edgekit: {set_name(model_paths(spec.path))} runs its segments on Edge TPUs: 1 worker, whose "
              "pipeline uses one device per segment", file=sys.stderr)
        return 1
    if spec.device not in ("auto", "edgetpu", "tpu"):
        found = 1  # one named device
    if found < workers:
        print(f"edgekit: {spec.path} runs on the Edge TPU: {found} worker(s), one per device", file=sys.stderr)
    return min(workers, found)


def run_model(spec, samples, workers=1, progress=None, label=""):
    """Records for every sample, in order. workers=1 runs here; more start a process pool."""
    workers = max(1, int(workers))
    if workers > 1 and len(samples) < 2:
        workers = 1
    workers = edgetpu_workers(spec, workers)
    spec = spec._replace(threads=spec.threads or default_threads(workers))
    records = [None] * len(samples)
    start = time.perf_counter()
    with Progress(len(samples), label, enabled=progress, unit="img") as bar:
        if workers == 1:
            predictor = open_predictor(spec)
            for i, found in enumerate(predict_all(predictor, samples)):
                records[i] = found
                bar.update()
            device, ran, floor = _where(predictor)
        else:
            device, ran, floor = _run_pool(spec, samples, workers, records, bar)
    return Run(records, time.perf_counter() - start, workers, spec.threads, device, ran, floor)


def _run_pool(spec, samples, workers, records, bar):
    methods = multiprocessing.get_all_start_methods()
    context = multiprocessing.get_context("fork" if "fork" in methods and sys.platform == "linux" else "spawn")
    # Small chunks keep both workers busy to the end; chunks of 1 would spend time on pickling.
    chunk = max(1, min(8, len(samples) // (workers * 8)))
    with context.Pool(workers, initializer=_init, initargs=(spec,)) as pool:
        where = None
        for index, record, where in pool.imap_unordered(_work, list(enumerate(samples)), chunksize=chunk):
            records[index] = record
            bar.update()
    return where

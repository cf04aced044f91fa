"""`edgekit.convert(...)`: a Keras model and the user's pictures in, an Edge TPU ready int8 .tflite out.

The order of work is chosen so that a bad input fails before the slow part: the output folder is tested for
writing, the model loaded and the calibration pictures read first; files are written last, each to a
temporary name and renamed, so an interrupted conversion leaves no partial .tflite.
"""

import os
import shutil
import tempfile
import time
from collections import namedtuple

import numpy as np

from edgekit.calibration import data as calibration_data
from edgekit.calibration import ranges as range_methods
from edgekit.converters import bias, keras_export, quantize, verify
from edgekit.errors import EdgekitError
from edgekit.files import writable_folder, write_atomic
from edgekit.runtime import tasks
from edgekit.tflite.metadata import embed_metadata, metadata_document, write_sidecar
from edgekit.tflite.model import read_model

# The measured best on EfficientNet-Lite0 (benchmarks/bench_convert.py, 500 seeded crops and flips of real
# photos): mse with bias correction over 32 pictures agrees with float on 96.0% of top-1 answers (16 pictures:
# 94.4%; without it minmax 92.2%, percentile 92.8%, mse 92.6%, kl 92.2%). Bias correction is on by default for
# classifiers only: on a detector it costs one pass per convolution (over a hundred).
DEFAULT_METHOD = "mse"
LITE_MEAN, LITE_STD = 127.0, 128.0
# The tasks edgekit can convert (segmentation models come from elsewhere, ready made).
CONVERTIBLE_TASKS = (tasks.CLASSIFICATION, tasks.DETECTION)

ConversionResult = namedtuple("ConversionResult", "int8_path float_path compiled_path report_json report_html "
                                                  "metadata calibration method warnings check compile timings "
                                                  "agreement")
Options = namedtuple("Options", "num_samples method io mean std resize task seed strict labels compile "
                                "write_float report cache_dir video_every max_detections score_threshold "
                                "iou_threshold quiet bias_correction bias_samples")
DEFAULTS = Options(num_samples=300, method=DEFAULT_METHOD, io="uint8", mean=LITE_MEAN, std=LITE_STD, resize=None,
                   task=None, seed=0, strict=False, labels=None, compile=True, write_float=False, report=True,
                   cache_dir=None, video_every=10, max_detections=25, score_threshold=1e-8, iou_threshold=0.5, quiet=True,
                   bias_correction=None, bias_samples=32)

_STATISTICS = {}   # in-memory statistics cache: key -> ranges.Statistics


class _Loud:
    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False


def _quiet(options):
    return quantize.native_output_silenced() if options.quiet else _Loud()


class OutputFolderError(EdgekitError):
    exit_code = 2


def _labels_list(path):
    if not path:
        return None
    from edgekit.runtime import labels as label_files

    found = label_files.read_label_file(path)
    if not found:
        return None
    return [found.get(i, "") for i in range(max(found) + 1)]


def _zoo_imagenet_labels():
    """The zoo's 1000 ImageNet class names for ImageNet-weight classifiers, so `edgekit run` shows names."""
    try:
        from edgekit import models

        return list(models.imagenet_labels())
    except (ImportError, AttributeError):
        return None


def protected_tensors(model):
    """Tensors whose calibrated min/max stays as recorded, whatever the method: graph outputs, logits
    before SOFTMAX / LOGISTIC (their extremes are the answer), inputs of custom ops (detection heads), and
    what feeds those through shape-only ops."""
    graph = model.main
    protected = set(graph.outputs)
    for op in graph.operators:
        if op.name in ("SOFTMAX", "LOGISTIC", "TANH") or op.is_custom:
            protected.update(i for i in op.inputs if i >= 0)
    producer = graph.producers()
    shape_only = ("RESHAPE", "CONCATENATION", "SQUEEZE", "EXPAND_DIMS")
    pending = list(protected)
    while pending:
        tensor = pending.pop()
        op = graph.operators[producer[tensor]] if tensor in producer else None
        if op is not None and op.name in shape_only:
            for i in op.inputs:
                if i >= 0 and not graph.tensors[i].is_constant and i not in protected:
                    protected.add(i)
                    pending.append(i)
    return protected


_CALIBRATED = {}   # in-memory cache: calibration key -> calibrated model bytes


def model_fingerprint(model, shape, detection=None):
    """A hash of the architecture, the weights and the export settings, or None when the model cannot be
    described (then nothing is cached). Same model + same pictures -> no second calibration pass."""
    import hashlib

    try:
        digest = hashlib.sha256(model.to_json().encode("utf-8"))
    except (TypeError, ValueError, NotImplementedError, AttributeError):
        return None
    digest.update(repr((shape, detection)).encode())
    for weight in model.weights:
        digest.update(weight.name.encode())
        digest.update(np.ascontiguousarray(np.asarray(weight)).tobytes())
    return digest.hexdigest()[:20]


def cached_calibration(key, cache_dir):
    if key is None:
        return None
    path = os.path.join(cache_dir, f"calibrated-{key}.tflite") if cache_dir else None
    if key in _CALIBRATED:
        if path and not os.path.isfile(path):
            keep_calibration(key, _CALIBRATED[key], cache_dir)
        return _CALIBRATED[key]
    if path and os.path.isfile(path):
        with open(path, "rb") as f:
            _CALIBRATED[key] = f.read()
        return _CALIBRATED[key]
    return None


def keep_calibration(key, calibrated, cache_dir):
    if key is None:
        return
    _CALIBRATED[key] = calibrated
    if cache_dir:
        os.makedirs(cache_dir, exist_ok=True)
        write_atomic(os.path.join(cache_dir, f"calibrated-{key}.tflite"), calibrated)


def statistics_for(calibrated, recorded, batches, key, cache_dir=None, progress=None):
    """Per-tensor histograms, from memory, then disk, else one pass over the calibration set."""
    if key in _STATISTICS:
        if cache_dir and range_methods.load(key, cache_dir) is None:
            range_methods.save(_STATISTICS[key], cache_dir)
        return _STATISTICS[key], True
    cached = range_methods.load(key, cache_dir) if cache_dir else None
    if cached is None:
        tensors = range_methods.collect(calibrated, batches, {i: tuple(r) for i, r in recorded.items()}, progress)
        cached = range_methods.Statistics(key, tensors)
        if cache_dir:
            range_methods.save(cached, cache_dir)
        hit = False
    else:
        hit = True
    _STATISTICS[key] = cached
    return cached, hit


def chosen_ranges(calibrated_model, recorded, statistics, method, input_range):
    """{tensor index: (low, high)} to write: the exact pixel range at the input, the method elsewhere."""
    chosen = {}
    if method != "minmax":
        protected = protected_tensors(calibrated_model)
        for index, r in range_methods.choose(statistics, method).items():
            if index not in protected:
                chosen[index] = (r.low, r.high)
    for index in calibrated_model.main.inputs:
        if index in recorded:
            chosen[index] = input_range
    return chosen


def int8_inputs(int8_bytes, pixels, options):
    """Calibration pixels as the int8 model's input wants them (raw for uint8, shifted for int8)."""
    from edgekit.runtime.adapters import common

    image = read_model(int8_bytes).input_tensors()[0]
    scale, zero_point = image.quantization.per_tensor
    return [common.normalize(p, image.dtype, scale, zero_point, options.mean, options.std)[None] for p in pixels]


def _detection_wrap(zoo_model, options):
    from edgekit.converters import postprocess

    return postprocess.wrapper(zoo_model, options)


def convert(model, calib, out_dir, weights=None, name=None, options=DEFAULTS, progress=None, **overrides):
    """Convert `model` (zoo name, Keras file, SavedModel folder or a keras.Model) calibrated on `calib`
    (a folder, glob, list file, video, dataset folder, or uint8 pixel array [N, H, W, 3]) into `out_dir`.

    Options can be given as keyword arguments (num_samples=..., method=..., io=...). Returns a
    ConversionResult; raises EdgekitError (one line) for anything the user can fix."""
    options = options._replace(**overrides)
    if options.method not in range_methods.METHODS:
        raise EdgekitError(f"unknown calibration method '{options.method}': use {', '.join(range_methods.METHODS)}")
    if options.io not in quantize.IO_TYPES:
        raise EdgekitError(f"unknown --io '{options.io}': use uint8 or int8")
    timings, warnings = {}, []
    start = time.perf_counter()
    out_dir = writable_folder(out_dir, "--out", error=OutputFolderError)
    labels = _labels_list(options.labels)

    if hasattr(model, "predict") and hasattr(model, "inputs"):
        loaded = keras_export.Loaded(model, name or getattr(model, "name", "model"), "keras.Model", None)
    else:
        with _quiet(options):
            loaded = keras_export.load_keras(model, weights=weights)
    name = name or loaded.name
    mean, std = options.mean, options.std
    folded = keras_export.fold_input_normalization(loaded.model)
    if folded is not None:
        inner, mean, std = folded
        loaded = loaded._replace(model=inner)
    elif getattr(loaded.model, "edgekit_raw_pixels", False):
        mean, std = 0.0, 1.0
    options = options._replace(mean=mean, std=std)
    height, width, channels = keras_export.input_shape(loaded.model)
    if channels != 3:
        raise EdgekitError(f"{loaded.source}: the model takes {channels} channels; edgekit converts RGB image models")
    task = options.task or getattr(loaded.model, "edgekit_task", None) or "classification"
    if task not in CONVERTIBLE_TASKS:
        raise EdgekitError(f"unknown task '{task}': use {', '.join(CONVERTIBLE_TASKS)}")
    resize = options.resize or tasks.DEFAULT_RESIZE[task]
    if labels is None and loaded.zoo and task == "classification" and str(weights).lower() == "imagenet":
        labels = _zoo_imagenet_labels()
    timings["load_model"] = time.perf_counter() - start

    step = time.perf_counter()
    preprocess = calibration_data.Preprocess(size=(width, height), resize=resize, letterbox=task == "detection")
    if isinstance(calib, (str, os.PathLike)):
        calibration = calibration_data.load_set(calib, preprocess, options.num_samples, options.seed,
                                                options.video_every, progress)
    else:
        calibration = calibration_data.from_arrays(calib)
        if calibration.pixels.shape[1:] != (height, width, channels):
            raise EdgekitError(f"calibration pixels are {list(calibration.pixels.shape[1:])}, the model takes "
                               f"{[height, width, channels]}: preprocess them to the input size first")
    calibration_summary, data_warnings = calibration_data.summary(calibration, options.num_samples)
    warnings += data_warnings
    timings["read_calibration"] = time.perf_counter() - step
    batches = quantize.to_model_input(calibration.pixels, options.mean, options.std)

    workdir = tempfile.mkdtemp(prefix="edgekit-convert-")
    try:
        with _quiet(options):
            step = time.perf_counter()
            wrap = _detection_wrap(loaded.model, options) if task == "detection" else None
            detection = (options.max_detections, options.score_threshold, options.iou_threshold) \
                if task == "detection" else None
            fingerprint = model_fingerprint(loaded.model, (height, width, channels), detection)
            calibration_key = f"{fingerprint}-{calibration.digest}-{options.mean:g}-{options.std:g}" \
                if fingerprint else None
            calibrated = cached_calibration(calibration_key, options.cache_dir)
            saved = None
            if calibrated is None or options.write_float:
                saved = keras_export.export_fixed_batch(loaded.model, os.path.join(workdir, "saved_model"),
                                                        (height, width, channels), wrap)
            timings["export"] = time.perf_counter() - step

            step = time.perf_counter()
            if calibrated is None:
                calibrated = quantize.calibrate(saved, batches)
                keep_calibration(calibration_key, calibrated, options.cache_dir)
            timings["calibrate"] = time.perf_counter() - step
            calibrated_model = read_model(calibrated, name="calibrated")
            recorded = quantize.recorded_ranges(calibrated_model)

            step = time.perf_counter()
            statistics, cache_hit = None, None
            if options.method != "minmax":
                key = range_methods.statistics_key(calibrated, calibration.digest)
                statistics, cache_hit = statistics_for(calibrated, recorded, batches, key, options.cache_dir)
            timings["statistics"] = time.perf_counter() - step

            step = time.perf_counter()
            input_range = quantize.pixel_range(options.mean, options.std)
            edits = chosen_ranges(calibrated_model, recorded, statistics, options.method, input_range)
            # Detection keeps float outputs: a uint8 output would add QUANTIZE ops that clip boxes and scores.
            output_type = "float32" if task == "detection" else options.io
            int8 = quantize.quantize(quantize.set_ranges(calibrated, edits), options.io, output_type)
            timings["quantize"] = time.perf_counter() - step
            corrected = options.bias_correction if options.bias_correction is not None else task == "classification"
            if corrected:
                step = time.perf_counter()
                int8 = bias.correct(int8, calibrated, batches, int8_inputs(int8, calibration.pixels, options),
                                    samples=options.bias_samples)
                timings["bias_correction"] = time.perf_counter() - step

            int8_name = f"{name}_int8.tflite"
            float_name = f"{name}_float.tflite"
            method_text = f"{options.method}{' + bias correction' if corrected else ''} " \
                          f"({len(calibration.pixels)} images, seed {options.seed})"
            document = metadata_document(task, (width, height), options.mean, options.std, resize, labels,
                                         loaded.source, method_text)
            int8 = embed_metadata(int8, document)
            int8_model = read_model(int8, name=int8_name)
            verdict = verify.verify(int8_model, strict=options.strict)
            warnings += verdict.warnings

            float_bytes = None
            if options.write_float:
                step = time.perf_counter()
                float_bytes = embed_metadata(quantize.float_model(saved), document)
                timings["float"] = time.perf_counter() - step
    finally:
        shutil.rmtree(workdir, ignore_errors=True)

    int8_path = write_atomic(os.path.join(out_dir, int8_name), int8)
    float_path = write_atomic(os.path.join(out_dir, float_name), float_bytes) if float_bytes else None

    compile_document, compiled_path = _compile(int8_path, out_dir, document, int8_name, options, warnings)
    timings["total_before_report"] = time.perf_counter() - start

    report_json = report_html = agreement = None
    if options.report:
        from edgekit.converters import conversion_report as report

        step = time.perf_counter()
        with _quiet(options):
            document_ = report.build(
                name=name, int8_model=int8_model, calibrated=calibrated, batches=batches, recorded=recorded,
                edits=edits, statistics=statistics, method=options.method, calibration=calibration_summary,
                prediction=verdict.prediction, warnings=warnings, timings=timings,
                compile_document=compile_document, cache_hit=cache_hit, options=options, float_path=float_path,
                int8_path=int8_path, bias_corrected=corrected)
        report_json, report_html = report.write(out_dir, name, document_)
        agreement = document_["agreement_with_float"]
        timings["report"] = time.perf_counter() - step
    timings["total"] = time.perf_counter() - start
    return ConversionResult(int8_path=int8_path, float_path=float_path, compiled_path=compiled_path,
                            report_json=report_json, report_html=report_html, metadata=document,
                            calibration=calibration_summary, method=options.method, warnings=warnings,
                            check=verify.check.summary(verdict.prediction), compile=compile_document,
                            timings={k: round(v, 3) for k, v in timings.items()}, agreement=agreement)


def _compile(int8_path, out_dir, document, int8_name, options, warnings):
    """Compile with edgetpu_compiler when it is installed; a sidecar keeps the metadata next to the result."""
    if not options.compile:
        return {"ran": False, "why": "not requested"}, None
    from edgekit.compiler import compiler

    try:
        found = compiler.find_compiler()
    except EdgekitError as e:
        warnings.append(str(e))
        found = None
    if not found:
        return {"ran": False, "why": compiler.missing_message()}, None
    try:
        result = compiler.compile_models([int8_path], compiler.DEFAULT_OPTIONS._replace(out_dir=out_dir))
    except EdgekitError as e:
        # The int8 model is good either way; say why the compiled twin is missing rather than fail.
        warnings.append(f"edgetpu_compiler failed: {e}")
        return {"ran": True, "error": str(e)}, None
    compiled = next((p for p in result.outputs if p.endswith("_edgetpu.tflite")), None)
    if compiled:
        write_sidecar(compiled, dict(document, cpu_model=int8_name))
    return {"ran": True, "command": result.command, "returncode": result.returncode, "outputs": result.outputs}, \
        compiled


def to_document(result):
    """The JSON document `edgekit convert --json` prints."""
    return result._asdict()

"""The steps of `convert()`, in the order it runs them; each takes the small named values earlier steps made.

  output_folder, load_source     the --out folder proven writable, the Keras model and how it is fed
  read_calibration               the pictures, preprocessed as `edgekit run` will, and the model's inputs
  export                         the calibrated model from the cache, else a fixed-batch SavedModel
  calibrate, read_calibrated     the converter's calibration pass; the ranges it recorded
  collect_statistics             per-tensor histograms (from the cache, else one more pass)
  choose_ranges, quantize_int8   the method's ranges written in, then the int8 model
  correct_biases                 optional, against the float model
  imprinting_head                --imprinting: pycoral's imprinting head appended to the int8 extractor
  label_and_verify               metadata embedded; 8-bit everywhere, op versions, what maps to the Edge TPU
  float_twin                     optional float baseline
  write_outputs, compile_twin    the files, each written whole; edgetpu_compiler when installed
  write_report                   <name>_report.json and .html

A bad input fails in the first two steps, before the slow part; nothing is written before write_outputs.
"""

import contextlib
import os
import shutil
import tempfile
from collections import namedtuple

from edgekit.calibration import data as calibration_data
from edgekit.calibration import ranges as range_methods
from edgekit.calibration.cache import calibration_key, model_fingerprint, statistics_key
from edgekit.compiler import check
from edgekit.converters import bias, keras_export, quantize, verify
from edgekit.converters.options import CONVERTIBLE_TASKS, IMPRINTING
from edgekit.errors import EdgekitError
from edgekit.files import writable_folder, write_atomic
from edgekit.runtime import tasks
from edgekit.tflite.metadata import embed_metadata, metadata_document, write_sidecar
from edgekit.tflite.model import read_model

# keras: the model to export (a leading Rescaling folded away); name: the output files' stem; provenance: where
# it came from, for the metadata; shape: (H, W, C); mean, std: the normalisation the int8 input encodes;
# resize: how pictures are resized for it; labels: class names or None; learning: None, or the learning output
# (options.LEARNING_OUTPUTS) `keras` was cut for; base_classes: an imprinting head's first classes (N, D) or None.
Source = namedtuple("Source", "keras name provenance shape task mean std resize labels learning base_classes")
# pictures: the CalibrationSet (uint8 pixels and where they came from); summary: its part of the report;
# warnings: about the pictures; batches: the float32 [1, H, W, C] inputs of the Keras model.
CalibrationData = namedtuple("CalibrationData", "pictures summary warnings batches")
# key: the calibrated model's cache key; cached: its bytes from the cache, or None; saved_model: the exported
# folder, or None when the cache made it unnecessary.
Export = namedtuple("Export", "key cached saved_model")
# The calibrated float model: its bytes, the parsed model, and {tensor index: quantize.RecordedRange}.
Calibrated = namedtuple("Calibrated", "model_bytes model recorded")
# statistics: ranges.Statistics, or None for minmax; cached: whether they came from the cache (None: minmax).
RangeStatistics = namedtuple("RangeStatistics", "statistics cached")
# The int8 model with its metadata embedded: bytes, the parsed model, the metadata, verify's CheckResult.
Int8Model = namedtuple("Int8Model", "model_bytes model metadata verdict bias_corrected")
Written = namedtuple("Written", "int8_path float_path")
# document: what the compile step did (the result's `compile`); path: the compiled model, or None.
Compiled = namedtuple("Compiled", "document path warnings")
# agreement: the int8 classes against the float ones; embedding_agreement: an extractor's embedding against
# the float one (conversion_report.embedding_agreement); None where they do not apply.
Report = namedtuple("Report", "json_path html_path agreement embedding_agreement")
NO_REPORT = Report(None, None, None, None)


class OutputFolderError(EdgekitError):
    exit_code = 2


def native_output(quiet):
    """Where the converter's own prints go while the block runs: captured when `quiet`, else the console."""
    return quantize.native_output_silenced() if quiet else contextlib.nullcontext()


@contextlib.contextmanager
def working_folder():
    """A temporary folder for the SavedModel, removed however the block ends."""
    folder = tempfile.mkdtemp(prefix="edgekit-convert-")
    try:
        yield folder
    finally:
        shutil.rmtree(folder, ignore_errors=True)


# --- load ------------------------------------------------------------------------------------------------

def output_folder(path):
    return writable_folder(path, "--out", error=OutputFolderError)


def load_source(model, weights, name, interface, quiet):
    """The `Source` for a zoo name, Keras file, SavedModel folder or keras.Model; one-line errors for a model
    edgekit cannot convert."""
    labels = _read_labels(interface.labels)
    loaded = _load_keras(model, weights, name, quiet)
    task = interface.task or getattr(loaded.model, "edgekit_task", None) or tasks.CLASSIFICATION
    if task not in CONVERTIBLE_TASKS:
        raise EdgekitError(f"unknown task '{task}': use {', '.join(CONVERTIBLE_TASKS)}")
    learning, base_classes, keras_model = interface.learning, None, loaded.model
    if learning:
        cut = _learning_cut(loaded, task, learning)
        keras_model = cut.model
        base_classes = cut.class_weights if learning == IMPRINTING else None
    keras_model, mean, std = _fold_normalization(keras_model, interface.mean, interface.std)
    height, width, channels = keras_export.input_shape(keras_model)
    if channels != 3:
        raise EdgekitError(f"{loaded.source}: the model takes {channels} channels; edgekit converts RGB image models")
    if labels is None and learning != tasks.EMBEDDING:
        if loaded.zoo and task == tasks.CLASSIFICATION and str(weights).lower() == "imagenet":
            labels = _zoo_imagenet_labels()
        elif learning == IMPRINTING:
            labels = _labels_beside(loaded.source)
    if base_classes is not None and labels is not None and len(labels) != len(base_classes):
        raise EdgekitError(f"{interface.labels or loaded.source}: {len(labels)} labels for a classifier of "
                           f"{len(base_classes)} classes; give --labels with one name per class")
    stem = name or (f"{loaded.name}_{learning}" if learning else loaded.name)
    return Source(keras_model, stem, loaded.source, (height, width, channels), task, mean, std,
                  interface.resize or tasks.DEFAULT_RESIZE[task], labels, learning, base_classes)


def _learning_cut(loaded, task, learning):
    """The classifier cut at its pooled features for --embedding / --imprinting; a detector is refused."""
    if task != tasks.CLASSIFICATION:
        raise EdgekitError(f"{loaded.source}: a {task} model; --{learning} takes an image classifier (a zoo "
                           "EfficientNet-Lite or a .keras file from `edgekit train`): convert this one without "
                           f"--{learning}")
    return keras_export.pooled_features(loaded.model, loaded.source)


def _labels_beside(source):
    """The class names `edgekit train --out` writes beside its .keras file, or None when there are none."""
    from edgekit.training.trained_classifier import LABELS_FILE

    if not os.path.isfile(source):
        return None
    path = os.path.join(os.path.dirname(source), LABELS_FILE)
    return _read_labels(path) if os.path.isfile(path) else None


def _load_keras(model, weights, name, quiet):
    if hasattr(model, "predict") and hasattr(model, "inputs"):
        return keras_export.Loaded(model, name or getattr(model, "name", "model"), "keras.Model", None)
    with native_output(quiet):
        return keras_export.load_keras(model, weights=weights)


def _fold_normalization(model, mean, std):
    """(model, mean, std) to convert: a leading Rescaling folded into the input quantization, raw-pixel
    models as (0, 1), others with the normalisation asked for."""
    folded = keras_export.fold_input_normalization(model)
    if folded is not None:
        return folded
    if getattr(model, "edgekit_raw_pixels", False):
        return model, 0.0, 1.0
    return model, mean, std


def _read_labels(path):
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


# --- calibrate -------------------------------------------------------------------------------------------

def read_calibration(calib, source, calibration, progress=None):
    """The pictures of `calib` (a path of any kind `calibration.sources` reads, or uint8 pixels already at
    the input size) as `CalibrationData`."""
    height, width, channels = source.shape
    if isinstance(calib, (str, os.PathLike)):
        preprocess = calibration_data.Preprocess(size=(width, height), resize=source.resize,
                                                 letterbox=source.task == tasks.DETECTION)
        pictures = calibration_data.load_set(calib, preprocess, calibration.num_samples, calibration.seed,
                                             calibration.video_every, progress)
    else:
        pictures = calibration_data.from_arrays(calib)
        if pictures.pixels.shape[1:] != source.shape:
            raise EdgekitError(f"calibration pixels are {list(pictures.pixels.shape[1:])}, the model takes "
                               f"{[height, width, channels]}: preprocess them to the input size first")
    summary, warnings = calibration_data.summary(pictures, calibration.num_samples)
    batches = quantize.to_model_input(pictures.pixels, source.mean, source.std)
    return CalibrationData(pictures, summary, warnings, batches)


def export(source, calibration, detection, cache, folder, float_wanted):
    """The calibrated model from `cache` when this model was calibrated on these pictures before; else (or
    when the float twin is wanted) the model exported to a SavedModel in `folder`."""
    is_detector = source.task == tasks.DETECTION
    wrap = _detection_wrap(source.keras, detection) if is_detector else None
    # A plain tuple of the settings: the key stays what it was for folders cached by earlier versions.
    fingerprint = model_fingerprint(source.keras, source.shape, tuple(detection) if is_detector else None)
    key = calibration_key(fingerprint, calibration.pictures.digest, source.mean, source.std)
    cached = cache.calibrated(key)
    saved_model = None
    if cached is None or float_wanted:
        saved_model = keras_export.export_fixed_batch(source.keras, os.path.join(folder, "saved_model"),
                                                      source.shape, wrap)
    return Export(key, cached, saved_model)


def _detection_wrap(keras_model, detection):
    from edgekit.converters import postprocess

    return postprocess.wrapper(keras_model, detection)


def calibrate(exported, batches, cache):
    """The calibrated float model's bytes: the cached ones, else one calibration pass (then cached)."""
    if exported.cached is not None:
        return exported.cached
    calibrated = quantize.calibrate(exported.saved_model, batches)
    cache.keep_calibrated(exported.key, calibrated)
    return calibrated


def read_calibrated(model_bytes):
    model = read_model(model_bytes, name="calibrated")
    return Calibrated(model_bytes, model, quantize.recorded_ranges(model))


def collect_statistics(calibrated, calibration, method, cache):
    """Per-tensor histograms for every method but minmax: from the cache, else one pass (then cached)."""
    if method == "minmax":
        return RangeStatistics(None, None)
    key = statistics_key(calibrated.model_bytes, calibration.pictures.digest)
    found = cache.statistics(key)
    if found is not None:
        return RangeStatistics(found, True)
    tensor_ranges = {index: tuple(r) for index, r in calibrated.recorded.items()}
    statistics = range_methods.Statistics(key, range_methods.collect(calibrated.model_bytes, calibration.batches,
                                                                     tensor_ranges))
    cache.keep_statistics(statistics)
    return RangeStatistics(statistics, False)


# --- quantize --------------------------------------------------------------------------------------------

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


def choose_ranges(calibrated, statistics, method, source):
    """{tensor index: (low, high)} to write: the exact pixel range at the input, the method's elsewhere
    (minmax writes nothing else: the recorded ranges are its ranges)."""
    chosen = {}
    if method != "minmax":
        protected = protected_tensors(calibrated.model)
        for index, r in range_methods.choose(statistics, method).items():
            if index not in protected:
                chosen[index] = (r.low, r.high)
    input_range = quantize.pixel_range(source.mean, source.std)
    for index in calibrated.model.main.inputs:
        if index in calibrated.recorded:
            chosen[index] = input_range
    return chosen


def quantize_int8(calibrated, ranges, source, io):
    """The full-int8 model with `ranges` written in."""
    # Detection keeps float outputs: a uint8 output would add QUANTIZE ops that clip boxes and scores.
    output_type = "float32" if source.task == tasks.DETECTION else io
    return quantize.quantize(quantize.set_ranges(calibrated.model_bytes, ranges), io, output_type)


def imprinting_head(int8_bytes, source):
    """The int8 embedding extractor with pycoral's imprinting head appended, the classifier's own classes as its
    base classes (`heads` normalizes each row: imprinting is a cosine classifier, so the Dense bias has no
    place in it)."""
    from edgekit.tflite import heads

    return heads.add_imprinting_head(int8_bytes, source.base_classes, name=int8_name(source))


def correct_biases(int8_bytes, calibrated, calibration, source, samples):
    """`bias.correct` with the float model's and the int8 model's inputs made from the same pictures."""
    image = read_model(int8_bytes).input_tensors()[0]
    scale, zero_point = image.quantization.per_tensor
    int8_inputs = [quantize.int8_batch(p, image.dtype, scale, zero_point, source.mean, source.std)
                   for p in calibration.pictures.pixels]
    return bias.correct(int8_bytes, calibrated.model_bytes, calibration.batches, int8_inputs, samples=samples)


# --- check and write -------------------------------------------------------------------------------------

def label_and_verify(int8_bytes, source, calibration, options, corrected):
    """The int8 model with its metadata embedded, checked for the Edge TPU compiler (raises
    ConversionCheckError when it would refuse it, or under --strict when ops stay on the CPU)."""
    settings = options.calibration
    method_text = (f"{settings.method}{' + bias correction' if corrected else ''} "
                   f"({len(calibration.pictures.pixels)} images, seed {settings.seed})")
    height, width, _ = source.shape
    detection = options.detection._asdict() if source.task == tasks.DETECTION else None
    # An embedding extractor's output is no task's findings: its metadata says so (`tasks.recorded_task`).
    task = tasks.EMBEDDING if source.learning == tasks.EMBEDDING else source.task
    metadata = metadata_document(task, (width, height), source.mean, source.std, source.resize,
                                 source.labels, source.provenance, method_text, detection=detection)
    labelled = embed_metadata(int8_bytes, metadata)
    model = read_model(labelled, name=int8_name(source))
    head = check.learning_head(model, labelled) if source.learning == IMPRINTING else None
    verdict = verify.verify(model, strict=options.outputs.strict, head=head)
    return Int8Model(labelled, model, metadata, verdict, corrected)


def int8_name(source):
    return f"{source.name}_int8.tflite"


def float_twin(saved_model, metadata):
    """The float TFLite model (same preprocessing, same metadata): the baseline to compare the int8 one with."""
    return embed_metadata(quantize.float_model(saved_model), metadata)


def write_outputs(out_dir, source, int8, float_bytes):
    """Write the int8 model (and the float twin), each to a temporary name renamed into place."""
    int8_path = write_atomic(os.path.join(out_dir, int8_name(source)), int8.model_bytes)
    float_path = write_atomic(os.path.join(out_dir, f"{source.name}_float.tflite"), float_bytes) \
        if float_bytes else None
    return Written(int8_path, float_path)


def compile_twin(written, out_dir, int8, wanted):
    """Compile with edgetpu_compiler when wanted and installed; a sidecar keeps the metadata next to the
    result. A missing or failing compiler is a warning: the int8 model is good either way."""
    if not wanted:
        return Compiled({"ran": False, "why": "not requested"}, None, [])
    from edgekit.compiler import compiler

    warnings = []
    try:
        found = compiler.find_compiler()
    except EdgekitError as e:
        warnings.append(str(e))
        found = None
    if not found:
        return Compiled({"ran": False, "why": compiler.missing_message()}, None, warnings)
    try:
        result = compiler.compile_models([written.int8_path], compiler.DEFAULT_OPTIONS._replace(out_dir=out_dir))
    except EdgekitError as e:
        warnings.append(f"edgetpu_compiler failed: {e}")
        return Compiled({"ran": True, "error": str(e)}, None, warnings)
    compiled = next((p for p in result.outputs if p.endswith("_edgetpu.tflite")), None)
    if compiled:
        write_sidecar(compiled, dict(int8.metadata, cpu_model=os.path.basename(written.int8_path)))
    document = {"ran": True, "command": result.command, "returncode": result.returncode, "outputs": result.outputs}
    return Compiled(document, compiled, warnings)


def write_report(out_dir, source, calibration, calibrated, statistics, ranges, int8, written, compiled, method,
                 io, warnings, timings):
    """<name>_report.json and .html: where accuracy goes, what maps to the Edge TPU, what took the time."""
    from edgekit.converters import conversion_report

    document = conversion_report.build(
        name=source.name, int8_model=int8.model, calibrated=calibrated.model_bytes, batches=calibration.batches,
        recorded=calibrated.recorded, edits=ranges, method=method, calibration=calibration.summary,
        prediction=int8.verdict.prediction, warnings=warnings, timings=timings, compile_document=compiled.document,
        cache_hit=statistics.cached, io=io, mean=source.mean, std=source.std, float_path=written.float_path,
        int8_path=written.int8_path, bias_corrected=int8.bias_corrected, learning=source.learning)
    json_path, html_path = conversion_report.write(out_dir, source.name, document)
    return Report(json_path, html_path, document["agreement_with_float"], document["embedding_agreement"])

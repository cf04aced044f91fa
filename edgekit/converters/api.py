"""`edgekit.convert(...)`: a Keras model and the user's pictures in, an Edge TPU ready int8 .tflite out.

`convert` runs the steps of `edgekit.converters.steps` in order and times each. The order is chosen so that
a bad input fails before the slow part: the output folder is tested for writing, the model loaded and the
calibration pictures read first; files are written last, each to a temporary name and renamed, so an
interrupted conversion leaves no partial .tflite.
"""

import contextlib
import os
import time
from collections import namedtuple

from edgekit.calibration.cache import CalibrationCache
from edgekit.compiler import check
from edgekit.converters import steps
from edgekit.converters.options import (CONVERTIBLE_TASKS, DEFAULT_METHOD, DEFAULTS, IMPRINTING, LEARNING_OUTPUTS,
                                        bias_correction_on, options_from)

__all__ = ["CONVERTIBLE_TASKS", "DEFAULT_METHOD", "DEFAULTS", "LEARNING_OUTPUTS", "CalibrationCache",
           "ConversionResult", "convert", "to_document"]

ConversionResult = namedtuple("ConversionResult", "int8_path float_path compiled_path report_json report_html "
                                                  "metadata calibration method warnings check compile timings "
                                                  "agreement embedding_agreement")


class StepClock:
    """Seconds per named step (`with clock.step("quantize"):`) and since the start (`clock.mark("total")`)."""

    def __init__(self):
        self.start = time.perf_counter()
        self.timings = {}

    @contextlib.contextmanager
    def step(self, name):
        begun = time.perf_counter()
        yield
        self.timings[name] = time.perf_counter() - begun

    def mark(self, name):
        self.timings[name] = time.perf_counter() - self.start


def convert(model, calib, out_dir, weights=None, name=None, progress=None, cache=None, **keywords):
    """Convert `model` (zoo name, Keras file, SavedModel folder or a keras.Model) calibrated on `calib`
    (a folder, glob, list file, video, dataset folder, or uint8 pixel array [N, H, W, 3]) into `out_dir`.

    Options are keyword arguments (num_samples=..., method=..., io=...; `options.DEFAULTS` lists them);
    learning="embedding" or "imprinting" converts a classifier's embedding extractor, or that extractor with
    pycoral's imprinting head and the classifier's classes, for on-device learning (`edgekit learn`).
    `cache`: a `CalibrationCache` to reuse calibration and histograms across calls (without one, each call
    has its own, on `cache_dir` when given). Returns a ConversionResult; raises EdgekitError (one line) for
    anything the user can fix."""
    options = options_from(keywords)
    cache = _cache_for(cache, options.calibration.cache_dir)
    quiet, method = options.outputs.quiet, options.calibration.method
    clock = StepClock()
    with clock.step("load_model"):
        out_dir = steps.output_folder(out_dir)
        source = steps.load_source(model, weights, name, options.interface, quiet)
    with clock.step("read_calibration"):
        calibration = steps.read_calibration(calib, source, options.calibration, progress)
    warnings = list(calibration.warnings)

    with steps.working_folder() as folder, steps.native_output(quiet):
        with clock.step("export"):
            exported = steps.export(source, calibration, options.detection, cache, folder, options.outputs.write_float)
        with clock.step("calibrate"):
            calibrated_bytes = steps.calibrate(exported, calibration.batches, cache)
        calibrated = steps.read_calibrated(calibrated_bytes)
        with clock.step("statistics"):
            statistics = steps.collect_statistics(calibrated, calibration, method, cache)
        with clock.step("quantize"):
            ranges = steps.choose_ranges(calibrated, statistics.statistics, method, source)
            int8_bytes = steps.quantize_int8(calibrated, ranges, source, options.interface.io)
        corrected = bias_correction_on(options.calibration, source.task)
        if corrected:
            with clock.step("bias_correction"):
                int8_bytes = steps.correct_biases(int8_bytes, calibrated, calibration, source,
                                                  options.calibration.bias_samples)
        if source.learning == IMPRINTING:
            with clock.step("imprinting_head"):
                int8_bytes = steps.imprinting_head(int8_bytes, source)
        int8 = steps.label_and_verify(int8_bytes, source, calibration, options, corrected)
        warnings += int8.verdict.warnings
        float_bytes = None
        if options.outputs.write_float:
            with clock.step("float"):
                float_bytes = steps.float_twin(exported.saved_model, int8.metadata)

    written = steps.write_outputs(out_dir, source, int8, float_bytes)
    compiled = steps.compile_twin(written, out_dir, int8, options.outputs.compile)
    warnings += compiled.warnings
    clock.mark("total_before_report")
    report = steps.NO_REPORT
    if options.outputs.report:
        with clock.step("report"), steps.native_output(quiet):
            report = steps.write_report(out_dir, source, calibration, calibrated, statistics, ranges, int8, written,
                                        compiled, method, options.interface.io, warnings, clock.timings)
    clock.mark("total")
    return ConversionResult(int8_path=written.int8_path, float_path=written.float_path, compiled_path=compiled.path,
                            report_json=report.json_path, report_html=report.html_path, metadata=int8.metadata,
                            calibration=calibration.summary, method=method, warnings=warnings,
                            check=check.summary(int8.verdict.prediction), compile=compiled.document,
                            timings={k: round(v, 3) for k, v in clock.timings.items()}, agreement=report.agreement,
                            embedding_agreement=report.embedding_agreement)


def _cache_for(cache, cache_dir):
    """The caller's cache, or a new one on `cache_dir` (a folder given both ways must be the same one)."""
    if cache is None:
        return CalibrationCache(cache_dir)
    if cache_dir is not None and os.fspath(cache_dir) != cache.folder:
        raise ValueError(f"convert(): cache_dir={cache_dir!r} differs from the cache's folder {cache.folder!r}")
    return cache


def to_document(result):
    """The JSON document `edgekit convert --json` prints."""
    return result._asdict()

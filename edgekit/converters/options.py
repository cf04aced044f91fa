"""The options of a conversion, grouped by what they steer, with their defaults (`edgekit convert`'s too).

`convert(...)` takes every option as a keyword (`method="kl"`, `io="int8"`, ...); `options_from` puts each
in its group, so a step is handed only the group it reads.
"""

from collections import namedtuple

from edgekit.calibration import data as calibration_data
from edgekit.calibration import sources
from edgekit.calibration.ranges import METHODS
from edgekit.converters import bias
from edgekit.converters.quantize import IO_TYPES
from edgekit.errors import EdgekitError
from edgekit.models.efficientnet_lite.presets import INPUT_MEAN, INPUT_STD
from edgekit.runtime import tasks

# The tasks edgekit can convert (segmentation models come from elsewhere, ready made).
CONVERTIBLE_TASKS = (tasks.CLASSIFICATION, tasks.DETECTION)
# What a classifier can be converted into for on-device learning (`edgekit learn`), instead of itself: its
# embedding extractor (the network cut at its pooled features, which pycoral's SoftmaxRegression appends a
# layer to), or that extractor with pycoral's imprinting head, the classifier's own classes as the base ones.
IMPRINTING = "imprinting"
LEARNING_OUTPUTS = (tasks.EMBEDDING, IMPRINTING)
# mse keeps, per tensor, the range whose 8-bit quantization has the least expected squared error, rounding
# and clipping counted together (`ranges.mse_range`). benchmarks/bench_convert.py compares the four methods
# on EfficientNet-Lite0, with and without bias correction: the figures behind this default.
DEFAULT_METHOD = "mse"

# The pictures and what is done with them. bias_correction None: on for classifiers only, since it costs
# one pass over bias_samples pictures per convolution and a detector's heads hold many more of those.
# cache_dir: where a CalibrationCache keeps calibrated models and histograms for the next conversion.
Calibration = namedtuple("Calibration", "num_samples seed video_every method bias_correction bias_samples cache_dir")
# How the converted model is fed and read: its task (None: what the model says, else classification), I/O
# type, the normalisation x = (pixel - mean) / std, the resize method (None: the task's), a label file, and
# learning: None (the model as it is) or one of LEARNING_OUTPUTS.
Interface = namedtuple("Interface", "task io mean std resize labels learning")
# The detection post-processing op's settings (detectors only).
Detection = namedtuple("Detection", "max_detections score_threshold iou_threshold")
# What is written and how strictly the result is checked. quiet: keep the converter's native prints (written
# straight to file descriptors 1 and 2) off the console.
Outputs = namedtuple("Outputs", "write_float report compile strict quiet")
Options = namedtuple("Options", "calibration interface detection outputs")

DEFAULTS = Options(
    calibration=Calibration(num_samples=calibration_data.NUM_SAMPLES, seed=0, video_every=sources.VIDEO_EVERY,
                            method=DEFAULT_METHOD, bias_correction=None, bias_samples=bias.SAMPLES, cache_dir=None),
    # Lite's (pixel - 127) / 128, which the Keras model may fold away (see keras_export).
    interface=Interface(task=None, io="uint8", mean=INPUT_MEAN, std=INPUT_STD, resize=None, labels=None,
                        learning=None),
    detection=Detection(max_detections=25, score_threshold=1e-8, iou_threshold=0.5),
    outputs=Outputs(write_float=False, report=True, compile=True, strict=False, quiet=True))


def options_from(keywords, defaults=DEFAULTS):
    """`defaults` with each keyword option (e.g. {"method": "kl"}) set in its group; checks method and io."""
    unknown = set(keywords) - {field for group in defaults for field in group._fields}
    if unknown:
        raise TypeError(f"convert() got unexpected keyword arguments: {', '.join(sorted(unknown))}")
    options = defaults._make(group._replace(**{k: v for k, v in keywords.items() if k in group._fields})
                             for group in defaults)
    check_options(options)
    return options


def check_options(options):
    """The one-line errors for a method, I/O type or learning output edgekit does not have."""
    method, io, learning = options.calibration.method, options.interface.io, options.interface.learning
    if method not in METHODS:
        raise EdgekitError(f"unknown calibration method '{method}': use {', '.join(METHODS)}")
    if io not in IO_TYPES:
        raise EdgekitError(f"unknown --io '{io}': use uint8 or int8")
    if learning is not None and learning not in LEARNING_OUTPUTS:
        raise EdgekitError(f"unknown learning output '{learning}': use {' or '.join(LEARNING_OUTPUTS)}")
    if learning is not None and options.interface.task not in (None, tasks.CLASSIFICATION):
        raise EdgekitError(f"--{learning} takes a classifier, not --task {options.interface.task}: leave --task "
                           "out, or convert without --" + learning)
    if learning == tasks.EMBEDDING and options.interface.labels:
        raise EdgekitError(f"--labels {options.interface.labels}: an embedding extractor has no classes, so "
                           "--embedding takes no labels (edgekit learn writes the new classes' labels)")


def bias_correction_on(calibration, task):
    """Whether biases get corrected: as asked, else for classifiers only (see `Calibration`)."""
    return calibration.bias_correction if calibration.bias_correction is not None else task == tasks.CLASSIFICATION

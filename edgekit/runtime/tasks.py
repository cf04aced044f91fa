"""The tasks a model can do, how to tell which one from the model itself, and each task's defaults.

One place for the task names and what depends on them (the CLIs' choices, the zoo's entries, the converter's
metadata, the runtime's adapters), so that adding a task is one edit here plus its adapter. Importing this
module costs nothing beyond the standard library, so that the zoo's listing can use the names.
"""

import math

from edgekit.errors import EdgekitError

CLASSIFICATION, DETECTION, SEGMENTATION = "classification", "detection", "segmentation"
TASKS = (CLASSIFICATION, DETECTION, SEGMENTATION)
# An embedding extractor (`edgekit convert --embedding`): its output is pooled features [1, D] that
# `edgekit learn` trains a last layer on, not a task's findings, so it is none of TASKS.
EMBEDDING = "embedding"

# How each task resizes by default (models' metadata or --resize override it): TFLite's own half-pixel
# bilinear for classifiers (Coral's expected scores hold with it, not with Pillow's bilinear), Pillow's
# LANCZOS for segmentation as pycoral's segmentation example and test use, Pillow's bilinear inside the
# detection letterbox as pycoral's detection example does.
DEFAULT_RESIZE = {CLASSIFICATION: "tflite-bilinear", DETECTION: "bilinear", SEGMENTATION: "lanczos"}

# The lowest score reported unless the user asks otherwise. Classification lists only classes with some
# score (a quantized softmax rounds most of them to exactly 0); detection follows pycoral's examples.
DEFAULT_THRESHOLD = {CLASSIFICATION: 1e-9, DETECTION: 0.4, SEGMENTATION: 0.0}


def detect_task(model):
    """classification / detection / segmentation, from a `tflite.Model`'s ops and output shapes."""
    from edgekit.tflite.model import DETECTION_POSTPROCESS_OP

    if any(op.name == DETECTION_POSTPROCESS_OP for op in model.operators()):
        return DETECTION
    outputs = model.output_tensors()
    if len(outputs) == 4 and any(math.prod(t.shape) == 1 for t in outputs):
        return DETECTION
    first = outputs[0].shape
    spatial = first[1:3] if len(first) >= 3 else ()
    if len(spatial) == 2 and min(spatial) > 1:
        return SEGMENTATION
    return CLASSIFICATION


def recorded_task(metadata, path="the model"):
    """The task edgekit's metadata names, or None when it names none this runtime knows. An embedding
    extractor (at `path`) has no findings to report: EdgekitError, saying what to do with it instead."""
    task = metadata.get("task")
    if task == EMBEDDING:
        raise EdgekitError(f"{path}: an embedding extractor (edgekit convert --embedding): its output is "
                           "features, not classes; give it classes with `edgekit learn backprop MODEL --data "
                           "FOLDER --out NEW.tflite`, or run the classifier it was cut from")
    return task if task in TASKS else None

"""One image through one model: decode, preprocess, invoke, postprocess, with each step timed.

`edgekit run` and `edgekit bench` are thin loops over `Runner`; the adapters do the pycoral-style
work and this file only decides which of them a model needs.
"""

import time
from collections import namedtuple

import numpy as np

from edgekit.errors import EdgekitError
from edgekit.runtime import images, labels
from edgekit.runtime.adapters import classify, common, detect, segment
from edgekit.runtime.interpreter import invoke
from edgekit.tflite.metadata import read_edgekit_metadata

TASKS = ("classification", "detection", "segmentation")
DETECTION_OP = "TFLite_Detection_PostProcess"
# How each task resizes by default (models' metadata or --resize override it): TFLite's own half-pixel
# bilinear for classifiers (Coral's expectations hold with it, not with Pillow's bilinear), Pillow's
# LANCZOS for segmentation as pycoral's example and test use, Pillow's bilinear inside the letterbox.
DEFAULT_RESIZE = {"classification": "tflite-bilinear", "detection": "bilinear", "segmentation": "lanczos"}

Timings = namedtuple("Timings", "decode preprocess invoke postprocess total")


def detect_task(model):
    """classification / detection / segmentation, from the model's ops and output shapes."""
    if any(op.name == DETECTION_OP for op in model.operators()):
        return "detection"
    outputs = model.output_tensors()
    if len(outputs) == 4 and any(int(np.prod(t.shape)) == 1 for t in outputs):
        return "detection"
    first = outputs[0].shape
    spatial = first[1:3] if len(first) >= 3 else ()
    if len(spatial) == 2 and min(spatial) > 1:
        return "segmentation"
    return "classification"


def _ms(seconds):
    return round(seconds * 1000.0, 3)


class Runner:
    """Runs images through an opened model (see `edgekit.runtime.interpreter.open_model`)."""

    def __init__(self, opened, task=None, labels=None, top_k=5, threshold=0.0, resize=None, mean=None,
                 std=None):
        if task is not None and task not in TASKS:
            raise EdgekitError(f"unknown task '{task}': use {', '.join(TASKS)}")
        self.opened = opened
        self.interpreter = opened.interpreter
        # What the converter recorded in the model fills in whatever the caller left open.
        recorded = read_edgekit_metadata(opened.model)
        self.task = task or (recorded.get("task") if recorded.get("task") in TASKS else None) \
            or detect_task(opened.model)
        self.labels = labels or dict(enumerate(recorded.get("labels") or []))
        self.top_k = top_k
        self.threshold = threshold
        self.resize = resize or (recorded.get("resize") if recorded.get("resize") in images.RESIZE_METHODS
                                 else None) or DEFAULT_RESIZE[self.task]
        # None: the adapters' default for the input type (raw pixels for uint8 models, as Coral's).
        self.mean = mean if mean is not None else recorded.get("mean")
        self.std = std if std is not None else recorded.get("std")
        self.mode = "L" if common.input_channels(self.interpreter) == 1 else "RGB"

    def label(self, class_id):
        return labels.label_name(self.labels, class_id)

    def preprocess(self, image):
        """Fill the input tensor from a PIL image; returns the scale that maps boxes back to it."""
        if self.task == "detection":
            _, scale = common.set_resized_input(self.interpreter, image.size,
                                                lambda size: images.resize(image, size, self.resize),
                                                self.mean, self.std)
            return scale
        size = common.input_size(self.interpreter)
        pixels = np.asarray(images.resize(image, size, self.resize))
        common.set_normalized_input(self.interpreter, pixels, self.mean, self.std)
        return (1.0, 1.0)

    def postprocess(self, scale, image_size):
        if self.task == "classification":
            found = classify.get_classes(self.interpreter, self.top_k, self.threshold)
            return {"classes": [{"id": c.id, "label": self.label(c.id), "score": round(float(c.score), 6)}
                                for c in found]}
        if self.task == "detection":
            found = detect.get_objects(self.interpreter, self.threshold, scale)
            width, height = image_size
            objects = []
            for obj in found:
                box = obj.bbox.map(lambda v: float(v))
                box = [max(0.0, min(box.xmin, width)), max(0.0, min(box.ymin, height)),
                       max(0.0, min(box.xmax, width)), max(0.0, min(box.ymax, height))]
                objects.append({"id": obj.id, "label": self.label(obj.id), "score": round(float(obj.score), 6),
                                "bbox": [round(v, 2) for v in box]})
            return {"objects": objects, "_found": found}
        mask = segment.get_mask(self.interpreter)
        return {"mask": self.mask_summary(mask), "_mask": mask}

    def mask_summary(self, mask):
        classes = [{"id": area.id, "label": self.label(area.id), "fraction": round(area.fraction, 6)}
                   for area in segment.class_areas(mask)]
        return {"shape": list(mask.shape), "classes": classes}

    def run_image(self, path):
        """Everything for one image file; the result dict is what `edgekit run --json` prints."""
        start = time.perf_counter()
        image = images.load_image(path, self.mode)
        decoded = time.perf_counter()
        result = self.run_loaded(image)
        result["timings_ms"]["decode"] = _ms(decoded - start)
        result["timings_ms"]["total"] = _ms(time.perf_counter() - start)
        return dict({"image": str(path)}, **result)

    def run_loaded(self, image):
        start = time.perf_counter()
        scale = self.preprocess(image)
        prepared = time.perf_counter()
        invoke(self.opened)
        invoked = time.perf_counter()
        result = self.postprocess(scale, image.size)
        done = time.perf_counter()
        result["latency_ms"] = _ms(invoked - prepared)
        result["timings_ms"] = {"preprocess": _ms(prepared - start), "invoke": _ms(invoked - prepared),
                                "postprocess": _ms(done - invoked)}
        return result


def public(result):
    """The result without the private keys (`_found`, `_mask`) kept for drawing."""
    return {k: v for k, v in result.items() if not k.startswith("_")}

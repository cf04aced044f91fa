"""One image through one model: decode, preprocess, invoke, postprocess, with each step timed.

`edgekit run` and `edgekit bench` are thin loops over `Runner`; the adapters do the pycoral-style
work and this file only decides which of them a model needs.
"""

import time
from concurrent.futures import ThreadPoolExecutor

import numpy as np

from edgekit.errors import EdgekitError
from edgekit.runtime import images, labels
from edgekit.runtime.tasks import DEFAULT_RESIZE, TASKS, detect_task, recorded_task
from edgekit.runtime.adapters import classify, common, detect, segment
from edgekit.runtime.interpreter import invoke
from edgekit.tflite.metadata import read_edgekit_metadata

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
        self.task = task or recorded_task(recorded) or detect_task(opened.model)
        self.labels = labels or dict(enumerate(recorded.get("labels") or []))
        self.top_k = top_k
        self.threshold = threshold
        self.resize = resize or (recorded.get("resize") if recorded.get("resize") in images.RESIZE_METHODS
                                 else None) or DEFAULT_RESIZE[self.task]
        # None: the adapters' default for the input type (raw pixels for uint8 models, as Coral's).
        self.mean = mean if mean is not None else recorded.get("mean")
        self.std = std if std is not None else recorded.get("std")
        self.mode = "L" if common.input_channels(self.interpreter) == 1 else "RGB"
        # Read once: prepare() runs on a worker thread and must not call into the interpreter.
        self.input_size = common.input_size(self.interpreter)
        shape = common.input_details(self.interpreter, "shape")
        self.input_channels = int(shape[3]) if len(shape) == 4 else 0
        self.input_format = (common.input_details(self.interpreter, "dtype"),
                             common.input_details(self.interpreter, "quantization"))

    def label(self, class_id):
        return labels.label_name(self.labels, class_id)

    def prepare(self, image):
        """The input tensor's contents for a PIL image, without touching the interpreter (so the next
        image can be prepared on another thread while this one runs). Returns (data, box scale)."""
        if self.task == "detection":
            boxed = common.letterbox(image.size, self.input_size, lambda size: images.resize(image, size, self.resize),
                                     self.input_channels)
            pixels, scale = boxed.canvas, (boxed.scale, boxed.scale)
        else:
            pixels, scale = np.asarray(images.resize(image, self.input_size, self.resize)), (1.0, 1.0)
        dtype, quantization = self.input_format
        return common.normalize(pixels, dtype, *quantization, self.mean, self.std), scale

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

    def load(self, path):
        """Decode and prepare one image file: (image, input data, box scale, timings so far)."""
        start = time.perf_counter()
        image = images.load_image(path, self.mode)
        decoded = time.perf_counter()
        data, scale = self.prepare(image)
        return image, data, scale, {"decode": _ms(decoded - start),
                                    "preprocess": _ms(time.perf_counter() - decoded)}

    def infer(self, path, loaded):
        """Invoke on prepared input and postprocess; the dict `edgekit run --json` prints per image."""
        image, data, scale, timings = loaded
        start = time.perf_counter()
        common.set_input(self.interpreter, data)
        invoke(self.opened)
        invoked = time.perf_counter()
        result = self.postprocess(scale, image.size)
        timings.update(invoke=_ms(invoked - start), postprocess=_ms(time.perf_counter() - invoked))
        timings["total"] = round(sum(timings.values()), 3)
        return dict({"image": str(path), "latency_ms": timings["invoke"], "timings_ms": timings,
                     "_image": image}, **result)

    def run_image(self, path):
        """Everything for one image file, one step after the other."""
        return self.infer(path, self.load(path))

    def run_images(self, paths):
        """Results for many image files, in order. The next image is decoded and resized on a worker
        thread while the interpreter runs this one (it releases the GIL), so throughput approaches the
        invoke rate. A bad file raises when its turn comes."""
        paths = list(paths)
        with ThreadPoolExecutor(max_workers=1) as pool:
            pending = pool.submit(self.load, paths[0]) if paths else None
            for i, path in enumerate(paths):
                loaded = pending.result()
                pending = pool.submit(self.load, paths[i + 1]) if i + 1 < len(paths) else None
                yield self.infer(path, loaded)

    def run_loaded(self, image):
        """Prepare, invoke and postprocess an image already decoded (camera frames, benchmarks)."""
        start = time.perf_counter()
        data, scale = self.prepare(image)
        return self.infer("", (image, data, scale, {"preprocess": _ms(time.perf_counter() - start)}))


def public(result):
    """The result without the private keys (`_found`, `_mask`, `_image`) kept for drawing."""
    return {k: v for k, v in result.items() if not k.startswith("_")}

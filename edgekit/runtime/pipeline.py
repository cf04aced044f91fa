"""One image through one model: decode, preprocess, invoke, postprocess, with each step timed.

`edgekit run` and `edgekit bench` are thin loops over `Runner`; the adapters do the pycoral-style
work and this file only decides which of them a model needs. Results are plain data, as pycoral's
adapters return them (`classify.Class`, `detect.Object`, a class-id mask): what to print, and how
rounded, is decided where they are printed (the CLI).
"""

import queue
import threading
import time
from collections import namedtuple
from concurrent.futures import ThreadPoolExecutor

import numpy as np

from edgekit.errors import EdgekitError
from edgekit.runtime import images, labels
from edgekit.runtime.adapters import classify, common, detect, segment
from edgekit.runtime.interpreter import invoke
from edgekit.runtime.pipelining import PipelinedModelRunner, PipelineRunError, PipelineSetupError
from edgekit.runtime.tasks import CLASSIFICATION, DEFAULT_RESIZE, DETECTION, TASKS, detect_task, recorded_task
from edgekit.tflite.metadata import read_edgekit_metadata

ImageResult = namedtuple("ImageResult", "path picture size latency_ms timings_ms task classes objects mask scores",
                         defaults=(None, None, None, None))
"""One image through a model, as data: findings as pycoral's adapters give them (scores unrounded, class ids
unnamed, boxes unclipped), timings in milliseconds to the microsecond.

path: the image file ("" for a picture decoded by the caller); picture: the decoded PIL image (None once
a report has let go of it); size: its (width, height); latency_ms: the invoke time (all members' for an
ensemble; from push to pop for a model in segments run pipelined, see `Runner.run_pipelined`); timings_ms:
{step: ms} in the order the steps ran, then "total"; task: a runtime.tasks name.
Of the findings only the task's own is set, the others are None (the default): classes (`classify.Class`,
best first), objects (`detect.Object`, boxes in the picture's pixels as the adapter maps them, not
clipped: see `clipped_box`), mask (class ids [H, W] at the model's output size). scores: a classifier's
whole score vector (an ensemble's combined one), which evaluation reads; None for other tasks.
"""

ModelInfo = namedtuple("ModelInfo", "path ran device backend task combine weights segments", defaults=(None,))
"""Which model ran where: path as asked for, ran (the file(s) that actually ran: the CPU twin of a
compiled model off the Edge TPU, a list for an ensemble's members or a model's segments), device, backend
("name version"), task, for an ensemble its combine rule and member weights (None for a single model), and
for a model cut into segments how many (None otherwise; device then lists each segment's)."""


def model_info(opened, task):
    """The `ModelInfo` of a model opened by `interpreter.open_model`."""
    if opened.segments is not None:
        return ModelInfo(str(opened.requested_path), [str(s.path) for s in opened.segments.segments], opened.device,
                         opened.backend.text, task, None, None, len(opened.segments.segments))
    return ModelInfo(str(opened.requested_path), str(opened.path), opened.device, opened.backend.text, task, None,
                     None)


def clipped_box(bbox, size):
    """A `detect.BBox` clipped to a picture of `size` (width, height), in float pixels: boxes as `edgekit run`
    reports them and `edgekit eval` scores them (a detector may place a box partly outside the picture)."""
    width, height = size
    return detect.BBox(xmin=max(0.0, min(float(bbox.xmin), width)), ymin=max(0.0, min(float(bbox.ymin), height)),
                       xmax=max(0.0, min(float(bbox.xmax), width)), ymax=max(0.0, min(float(bbox.ymax), height)))


def _ms(seconds):
    # Milliseconds to the microsecond: perf_counter differences finer than that are noise.
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
        self.task = task or recorded_task(recorded, opened.path) or detect_task(opened.model)
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

    @property
    def info(self):
        return model_info(self.opened, self.task)

    def label(self, class_id):
        return labels.label_name(self.labels, class_id)

    def prepare(self, image):
        """The input tensor's contents for a PIL image, without touching the interpreter (so the next
        image can be prepared on another thread while this one runs). Returns (data, box scale)."""
        if self.task == DETECTION:
            boxed = common.letterbox(image.size, self.input_size, lambda size: images.resize(image, size, self.resize),
                                     self.input_channels)
            pixels, scale = boxed.canvas, (boxed.scale, boxed.scale)
        else:
            pixels, scale = np.asarray(images.resize(image, self.input_size, self.resize)), (1.0, 1.0)
        dtype, quantization = self.input_format
        return common.normalize(pixels, dtype, *quantization, self.mean, self.std), scale

    def postprocess(self, scale, outputs=None):
        """The findings of the last invoke, or of `outputs` (an interpreter-like view of one result, see
        `PoppedOutputs`): (classes, objects, mask, scores), the task's own set."""
        try:
            return self._findings(scale, self.interpreter if outputs is None else outputs)
        except ValueError as e:  # the adapters' word for outputs of another shape, as in pycoral
            raise EdgekitError(f"{self.opened.path}: its outputs do not fit the task {self.task} ({e}); leave "
                               f"--task out to use the one read from the model") from None

    def _findings(self, scale, interpreter):
        if self.task == CLASSIFICATION:
            scores = classify.get_scores(interpreter)
            return classify.get_classes_from_scores(scores, self.top_k, self.threshold), None, None, scores
        if self.task == DETECTION:
            return None, detect.get_objects(interpreter, self.threshold, scale), None, None
        return None, None, segment.get_mask(interpreter), None

    def load(self, path):
        """Decode and prepare one image file: (image, input data, box scale, timings so far)."""
        start = time.perf_counter()
        image = images.load_image(path, self.mode)
        decoded = time.perf_counter()
        data, scale = self.prepare(image)
        return image, data, scale, {"decode": _ms(decoded - start),
                                    "preprocess": _ms(time.perf_counter() - decoded)}

    def infer(self, path, loaded):
        """Invoke on prepared input and postprocess: the `ImageResult`."""
        image, data, scale, timings = loaded
        start = time.perf_counter()
        common.set_input(self.interpreter, data)
        invoke(self.opened)
        invoked = time.perf_counter()
        classes, objects, mask, scores = self.postprocess(scale)
        timings.update(invoke=_ms(invoked - start), postprocess=_ms(time.perf_counter() - invoked))
        timings["total"] = round(sum(timings.values()), 3)
        return ImageResult(str(path), image, image.size, timings["invoke"], timings, self.task, classes, objects,
                           mask, scores)

    def run_image(self, path):
        """Everything for one image file, one step after the other."""
        return self.infer(path, self.load(path))

    def run_images(self, paths):
        """Results for many image files, in order. The next image is decoded and resized on a worker
        thread while the interpreter runs this one (it releases the GIL), so throughput approaches the
        invoke rate. A model in segments is pipelined over its devices when that pays (`pipelines`). A bad
        file raises when its turn comes."""
        paths = list(paths)
        pipe = pipelined_runner(self.opened) if pipelines(self.opened, len(paths)) else None
        if pipe is not None:
            for _, result in self.run_pipelined(pipe, paths, self.load):
                yield result
            return
        with ThreadPoolExecutor(max_workers=1) as pool:
            pending = pool.submit(self.load, paths[0]) if paths else None
            for i, path in enumerate(paths):
                loaded = pending.result()
                pending = pool.submit(self.load, paths[i + 1]) if i + 1 < len(paths) else None
                yield self.infer(path, loaded)

    def run_loaded(self, image):
        """Prepare, invoke and postprocess an image already decoded (camera frames, benchmarks)."""
        return self.infer("", self.load_decoded(image))

    def load_decoded(self, image):
        """`load` for an image already decoded: (image, input data, box scale, timings so far)."""
        start = time.perf_counter()
        data, scale = self.prepare(image)
        return image, data, scale, {"preprocess": _ms(time.perf_counter() - start)}

    def run_pipelined(self, pipe, items, load, name=str):
        """(item, `ImageResult`) for each of `items` (image files, or camera frames: any iterable), through
        `pipe`, a `PipelinedModelRunner` over this model's segments (`pipelined_runner`): a feeder thread loads
        each item (`load(item)` gives what `load` gives for a file: image, input data, box scale, timings) and
        pushes it while the segments work on earlier ones; this thread pops and postprocesses. name(item): the
        result's path. invoke time is from push to pop (the pipe's latency, waits behind earlier items
        included). An item that fails to load raises when its turn comes; the pipe and the feeder are stopped
        when the results end, fail or are no longer wanted."""
        details = pipe.interpreters()[0].get_input_details()[0]
        # One item waits for the first segment at most: the feeder stays only a step ahead of the pipe.
        pipe.set_input_queue_size(1)
        pending = queue.Queue()      # (item, loaded or the exception it raised, push time), then _FED
        failed = []                  # what stopped the feeder, when it was not a segment's error

        def feed():
            try:
                for item in items:
                    try:
                        loaded = load(item)
                    except Exception as e:  # noqa: BLE001 - raised by the consumer when this item's turn comes
                        pending.put((item, e, None))
                        return
                    pending.put((item, loaded, time.perf_counter()))
                    pipe.push({details["name"]: np.reshape(loaded[1], tuple(details["shape"]))})
            except PipelineRunError:
                return          # a segment failed, or the consumer stopped: pop() says which
            except Exception as e:  # noqa: BLE001 - handed to the consumer, which owns error reporting
                failed.append(e)
            finally:
                try:
                    pipe.push({})
                except PipelineRunError:
                    pass
                pending.put(_FED)

        feeder = threading.Thread(target=feed, name="edgekit-feeder", daemon=True)
        feeder.start()
        try:
            while (entry := pending.get()) is not _FED:
                item, loaded, pushed = entry
                if isinstance(loaded, BaseException):
                    raise loaded
                outputs = pipe.pop()
                if outputs is None:      # the feeder stopped before pushing this item
                    raise failed[0] if failed else PipelineRunError(f"{self.opened.path}: the pipeline ended "
                                                                    f"before {name(item)} came out of it")
                popped = time.perf_counter()
                image, _, scale, timings = loaded
                classes, objects, mask, scores = self.postprocess(scale, PoppedOutputs(self.interpreter, outputs))
                timings.update(invoke=_ms(popped - pushed), postprocess=_ms(time.perf_counter() - popped))
                timings["total"] = round(sum(timings.values()), 3)
                yield item, ImageResult(name(item), image, image.size, timings["invoke"], timings, self.task,
                                        classes, objects, mask, scores)
            if failed:
                raise failed[0]
        finally:
            pipe.close()
            feeder.join()


_FED = object()  # what the feeder of `Runner.run_pipelined` queues last


def pipelines(opened, images=None):
    """Whether a stream of `images` images (None: a stream of unknown length, such as a camera's) goes through
    `opened` pipelined: a model in segments, more than one of each. Each segment then works on its own image at
    the same time, on its own Edge TPU (Coral's pipelining), or on the CPU with its share of the cores."""
    return opened.segments is not None and len(opened.segments.segments) > 1 and (images is None or images > 1)


def pipelined_runner(opened):
    """A `PipelinedModelRunner` over the segments of `opened`, or None when their results cannot all come out of
    the pipe (pycoral's runner gives the last segment's outputs only: a model output made by an earlier segment
    would be lost; such a set runs chained instead)."""
    interpreters = [segment.interpreter for segment in opened.segments.segments]
    last = {d["name"] for d in interpreters[-1].get_output_details()}
    if any(d["name"] not in last for d in opened.interpreter.get_output_details()):
        return None
    try:
        return PipelinedModelRunner(interpreters)
    except PipelineSetupError:
        return None


class PoppedOutputs:
    """One result popped from a `PipelinedModelRunner` ({output name: array}) seen through the tf.lite
    interpreter calls the adapters make (`get_output_details`, `tensor`, `get_tensor`, the input details and the
    signature), with the details of `interpreter`, the whole model's (a `ChainedInterpreter`)."""

    def __init__(self, interpreter, outputs):
        self._interpreter = interpreter
        self._by_index = {d["index"]: outputs[d["name"]] for d in interpreter.get_output_details()}

    def get_output_details(self):
        return self._interpreter.get_output_details()

    def get_input_details(self):
        return self._interpreter.get_input_details()

    def get_tensor(self, index):
        return self._by_index[index]

    def tensor(self, index):
        value = self._by_index[index]
        return lambda: value

    def _get_full_signature_list(self):
        full = getattr(self._interpreter, "_get_full_signature_list", None)
        return full() if full else {}

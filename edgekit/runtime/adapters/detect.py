"""Functions to work with a detection model (TFLite_Detection_PostProcess outputs).

`BBox` keeps pycoral's semantics exactly, so code and thresholds written for pycoral carry over.
"""

import collections

import numpy as np

from edgekit.runtime.adapters import common

Object = collections.namedtuple("Object", ["id", "score", "bbox"])
"""One detected object: class id (int), score (float) and a `BBox` in image pixels."""

# Output names of the post-processing op when a model carries a SignatureDef (TF2 exports).
_SIGNATURE_OUTPUTS = ("output_0", "output_1", "output_2", "output_3")  # count, scores, classes, boxes


class BBox(collections.namedtuple("BBox", ["xmin", "ymin", "xmax", "ymax"])):
    """An axis-aligned box. It may be invalid (xmin > xmax or ymin > ymax): check `valid`."""

    __slots__ = ()

    @property
    def width(self):
        return self.xmax - self.xmin

    @property
    def height(self):
        return self.ymax - self.ymin

    @property
    def area(self):
        return self.width * self.height

    @property
    def valid(self):
        """True when width >= 0 and height >= 0 (an empty box is valid, as in pycoral)."""
        return self.width >= 0 and self.height >= 0

    def scale(self, sx, sy):
        return BBox(xmin=sx * self.xmin, ymin=sy * self.ymin, xmax=sx * self.xmax, ymax=sy * self.ymax)

    def translate(self, dx, dy):
        return BBox(xmin=dx + self.xmin, ymin=dy + self.ymin, xmax=dx + self.xmax, ymax=dy + self.ymax)

    def map(self, f):
        """Apply `f` to every coordinate (e.g. `int` to truncate to pixels)."""
        return BBox(xmin=f(self.xmin), ymin=f(self.ymin), xmax=f(self.xmax), ymax=f(self.ymax))

    @staticmethod
    def intersect(a, b):
        """The overlap of two boxes; invalid when they do not overlap."""
        return BBox(xmin=max(a.xmin, b.xmin), ymin=max(a.ymin, b.ymin),
                    xmax=min(a.xmax, b.xmax), ymax=min(a.ymax, b.ymax))

    @staticmethod
    def union(a, b):
        """The smallest box holding both (always valid for valid inputs)."""
        return BBox(xmin=min(a.xmin, b.xmin), ymin=min(a.ymin, b.ymin),
                    xmax=max(a.xmax, b.xmax), ymax=max(a.ymax, b.ymax))

    @staticmethod
    def iou(a, b):
        """Intersection over union: 1.0 for identical boxes, 0.0 when they do not overlap."""
        intersection = BBox.intersect(a, b)
        if not intersection.valid:
            return 0.0
        area = intersection.area
        return area / (a.area + b.area - area)


def _signature_outputs(interpreter):
    """{name: tensor index} of the detection signature, or None when the model has none."""
    full = getattr(interpreter, "_get_full_signature_list", None)
    signatures = full() if full else {}
    matching = [s["outputs"] for s in (signatures or {}).values()
                if all(name in s.get("outputs", {}) for name in _SIGNATURE_OUTPUTS)]
    if len(matching) > 1:
        raise ValueError("only detection models with one signature are supported")
    return matching[0] if matching else None


def _output_by_tensor(interpreter, tensor_index):
    """common.output_tensor of the output whose tensor is `tensor_index` (dequantized there)."""
    for i, details in enumerate(interpreter.get_output_details()):
        if details["index"] == tensor_index:
            return common.output_tensor(interpreter, i)
    raise ValueError(f"signature output tensor {tensor_index} is not a model output")


def _boxes_first(interpreter):
    """True for boxes, classes, scores, count; False for scores, boxes, count, classes.

    pycoral asks whether the 4th output holds one element, which misreads scores-first models with
    max_detections 1 (their classes hold one element too). Boxes are the one [1, N, 4] output, so
    where they sit decides; pycoral's test remains for outputs shaped otherwise.
    """
    ranks = [len(common.output_details(interpreter, i)["shape"]) for i in range(2)]
    if ranks[0] != ranks[1]:
        return ranks[0] == 3
    return int(np.prod(common.output_details(interpreter, 3)["shape"])) == 1


def get_raw_outputs(interpreter):
    """(boxes [N,4] normalized ymin,xmin,ymax,xmax; class ids [N]; scores [N]; count), any layout.

    Three layouts exist: named by a SignatureDef; boxes, classes, scores, count (TF1 exports, whose
    4th output holds one element); else scores, boxes, count, classes.
    """
    named = _signature_outputs(interpreter)
    outputs = len(interpreter.get_output_details())
    if named is None and outputs < 4:
        raise ValueError(f"not a detection model: {outputs} output(s), where TFLite_Detection_PostProcess "
                         "gives 4 (boxes, classes, scores, count)")
    if named is not None:
        count, scores, classes, boxes = (_output_by_tensor(interpreter, named[n]) for n in _SIGNATURE_OUTPUTS)
    elif _boxes_first(interpreter):
        boxes, classes, scores, count = (common.output_tensor(interpreter, i) for i in range(4))
    else:
        scores, boxes, count, classes = (common.output_tensor(interpreter, i) for i in range(4))
    return boxes[0], classes[0], scores[0], int(count.reshape(-1)[0])


def picture_box(box, input_size, image_scale=(1.0, 1.0)):
    """A normalized (ymin, xmin, ymax, xmax) box of an input of `input_size` (width, height), as a `BBox` in the
    pixels of the picture that was resized into it by `image_scale` (x, y): truncated to ints, as pycoral does."""
    width, height = input_size
    ymin, xmin, ymax, xmax = (float(v) for v in box)
    return BBox(xmin=xmin, ymin=ymin, xmax=xmax, ymax=ymax).scale(width / image_scale[0],
                                                                   height / image_scale[1]).map(int)


def get_objects(interpreter, score_threshold=-float("inf"), image_scale=(1.0, 1.0)):
    """pycoral's get_objects: detected `Object`s with score >= `score_threshold`, boxes in image pixels.

    `image_scale` is the (x, y) scale the image was resized by into the input (the second value
    returned by common.set_resized_input); boxes are mapped back through it and truncated to ints.
    """
    boxes, classes, scores, count = get_raw_outputs(interpreter)
    input_size = common.input_size(interpreter)

    def make(i):
        return Object(id=int(classes[i]), score=float(scores[i]), bbox=picture_box(boxes[i], input_size, image_scale))

    # The op pads its outputs to max_detections; only the first `count` rows are detections.
    return [make(i) for i in range(min(count, len(scores))) if scores[i] >= score_threshold]

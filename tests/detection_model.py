"""Build small, real .tflite models in tests, with LiteRT's own flatbuffer schema (no TensorFlow).

`build_detection_model` makes a model whose only op is the custom op TFLite_Detection_PostProcess
(built into LiteRT's op resolver), fed by constant box encodings, class scores and anchors, with a
dummy uint8 image input so the adapters see an ordinary detector. It can lay its four outputs out in
each of the three orders pycoral reads. `build_resize_model` makes a one-op RESIZE_BILINEAR model, the
reference the numpy resize is checked against.
"""

import numpy as np
from flatbuffers import flexbuffers

from edgekit.tflite.graph_edit import litert_schema, pack
from edgekit.tflite.model import DETECTION_POSTPROCESS_OP as POSTPROCESS_OP

schema = litert_schema()

LAYOUTS = ("boxes-first", "scores-first", "signature")
DEFAULT_OPTIONS = {"max_detections": 5, "max_classes_per_detection": 1, "detections_per_class": 5,
                   "use_regular_nms": False, "nms_score_threshold": 0.3, "nms_iou_threshold": 0.5,
                   "y_scale": 10.0, "x_scale": 10.0, "h_scale": 5.0, "w_scale": 5.0}
_TYPES = {np.dtype(np.float32): schema.TensorType.FLOAT32, np.dtype(np.uint8): schema.TensorType.UINT8,
          np.dtype(np.int32): schema.TensorType.INT32}


class _Graph:
    """Accumulates tensors and buffers for one subgraph; buffer 0 stays empty, as the schema wants."""

    def __init__(self):
        self.tensors, self.buffers = [], [schema.BufferT()]

    def tensor(self, name, shape, dtype=np.float32, data=None):
        t = schema.TensorT()
        t.name, t.shape, t.type = name, list(shape), _TYPES[np.dtype(dtype)]
        t.buffer = 0
        if data is not None:
            buffer = schema.BufferT()
            buffer.data = np.frombuffer(np.ascontiguousarray(data, dtype=dtype).tobytes(), dtype=np.uint8)
            self.buffers.append(buffer)
            t.buffer = len(self.buffers) - 1
        self.tensors.append(t)
        return len(self.tensors) - 1


def _operator_code(builtin=None, custom=None):
    code = schema.OperatorCodeT()
    if custom:
        code.builtinCode = code.deprecatedBuiltinCode = schema.BuiltinOperator.CUSTOM
        code.customCode = custom
    else:
        code.builtinCode = code.deprecatedBuiltinCode = builtin
    code.version = 1
    return code


def _write(path, graph, inputs, outputs, operators, codes, signature_outputs=None):
    subgraph = schema.SubGraphT()
    subgraph.tensors, subgraph.inputs, subgraph.outputs = graph.tensors, inputs, outputs
    subgraph.operators, subgraph.name = operators, "main"
    model = schema.ModelT()
    model.version, model.description = 3, "edgekit test model"
    model.operatorCodes, model.subgraphs, model.buffers = codes, [subgraph], graph.buffers
    if signature_outputs:
        signature = schema.SignatureDefT()
        signature.signatureKey, signature.subgraphIndex = "serving_default", 0
        signature.inputs = [_tensor_map("images", inputs[0])]
        signature.outputs = [_tensor_map(name, index) for name, index in signature_outputs.items()]
        model.signatureDefs = [signature]
    path.write_bytes(pack(model))
    return path


def _tensor_map(name, index):
    entry = schema.TensorMapT()
    entry.name, entry.tensorIndex = name, index
    return entry


def build_detection_model(path, anchors, encodings, scores, layout="boxes-first", input_hw=(120, 160),
                          **options):
    """Write the detector to `path` and return it.

    anchors [A, 4] normalized (yc, xc, h, w); encodings [A, 4] (ty, tx, th, tw); scores [A, C] with no
    background column. `options` override DEFAULT_OPTIONS (the op's custom options).
    """
    anchors, encodings, scores = (np.asarray(a, dtype=np.float32) for a in (anchors, encodings, scores))
    count, classes = scores.shape
    settings = dict(DEFAULT_OPTIONS, num_classes=classes, **options)
    n = settings["max_detections"] * settings["max_classes_per_detection"]
    graph = _Graph()
    image = graph.tensor("images", [1, *input_hw, 3], np.uint8)
    box_in = graph.tensor("box_encodings", [1, count, 4], data=encodings[None])
    score_in = graph.tensor("class_predictions", [1, count, classes], data=scores[None])
    anchor_in = graph.tensor("anchors", [count, 4], data=anchors)
    boxes = graph.tensor("detection_boxes", [1, n, 4])
    class_ids = graph.tensor("detection_classes", [1, n])
    found = graph.tensor("detection_scores", [1, n])
    num = graph.tensor("num_detections", [1])

    op = schema.OperatorT()
    op.opcodeIndex, op.inputs, op.outputs = 0, [box_in, score_in, anchor_in], [boxes, class_ids, found, num]
    op.customOptions = list(flexbuffers.Dumps(settings))
    op.customOptionsFormat = schema.CustomOptionsFormat.FLEXBUFFERS

    signature = None
    if layout == "boxes-first":
        outputs = [boxes, class_ids, found, num]
    elif layout == "scores-first":
        outputs = [found, boxes, num, class_ids]
    elif layout == "signature":
        # An order neither positional rule decodes, so only reading the signature gives right answers.
        outputs = [class_ids, num, boxes, found]
        signature = {"output_0": num, "output_1": found, "output_2": class_ids, "output_3": boxes}
    else:
        raise ValueError(f"layout must be one of {LAYOUTS}")
    return _write(path, graph, [image], outputs, [op], [_operator_code(custom=POSTPROCESS_OP)], signature)


def build_resize_model(path, in_hw, out_hw, channels=3):
    """A float32 [1, H, W, C] -> RESIZE_BILINEAR(half_pixel_centers=True) -> [1, h, w, C] model."""
    graph = _Graph()
    image = graph.tensor("image", [1, *in_hw, channels])
    size = graph.tensor("size", [2], np.int32, data=np.array(out_hw, dtype=np.int32))
    resized = graph.tensor("resized", [1, *out_hw, channels])
    op = schema.OperatorT()
    op.opcodeIndex, op.inputs, op.outputs = 0, [image, size], [resized]
    op.builtinOptionsType = schema.BuiltinOptions.ResizeBilinearOptions
    op.builtinOptions = schema.ResizeBilinearOptionsT()
    op.builtinOptions.alignCorners, op.builtinOptions.halfPixelCenters = False, True
    code = _operator_code(builtin=schema.BuiltinOperator.RESIZE_BILINEAR)
    code.version = 3  # half_pixel_centers arrived in version 3 of the op
    return _write(path, graph, [image], [resized], [op], [code])

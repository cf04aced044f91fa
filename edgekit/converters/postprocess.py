"""Detection export: end an EfficientDet-style model with TFLite's `TFLite_Detection_PostProcess` op.

There is no TensorFlow op for it. The converter turns a `tf.function` whose `experimental_implements`
names the op (with every attribute, typed i/f/b) into the custom op (TensorFlow's
tensorflow/compiler/mlir/lite/utils/nms_utils.cc, the route the TF2 detection exports of the TensorFlow Model
Garden and google/automl's EfficientDet take); the function's own body only has to return zeros of the right
shapes in the kernel's output order (boxes, classes, scores, count). On the pinned TensorFlow this works in
float and full-int8 conversions alike, without allow_custom_ops; the heads before it are int8 and dequantized
in front of it; outputs stay float32 (tests/converters/test_convert_detection.py checks the int8 model).

The endpoint returns a dict keyed like TF2 detection exports (output_0 count, output_1 scores, output_2
classes, output_3 boxes), which the runtime's detection adapter reads by signature name.
"""

from collections import namedtuple

import numpy as np

from edgekit.tflite.model import DETECTION_POSTPROCESS_OP as OP_NAME

Settings = namedtuple("Settings", "num_classes max_detections score_threshold iou_threshold")


def implements_signature(settings):
    """The attribute string the converter's NMS legalization expects; every attribute typed."""
    attributes = [("max_detections", "i", int(settings.max_detections)),
                  ("max_classes_per_detection", "i", 1),
                  ("use_regular_nms", "b", "false"),
                  ("nms_score_threshold", "f", float(settings.score_threshold)),
                  ("nms_iou_threshold", "f", float(settings.iou_threshold)),
                  # EfficientDet's (ty, tx, th, tw) are not pre-scaled, unlike SSD's 10/10/5/5.
                  ("y_scale", "f", 1.0), ("x_scale", "f", 1.0), ("h_scale", "f", 1.0), ("w_scale", "f", 1.0),
                  ("num_classes", "i", int(settings.num_classes))]
    parts = [f'name: "{OP_NAME}"']
    for key, kind, value in attributes:
        text = f"{value:.9g}" if kind == "f" else str(value)
        parts.append(f'attr {{ key: "{key}" value {{ {kind}: {text} }} }}')
    return " ".join(parts)


def detection_outputs(box_encodings, class_logits, anchors, settings):
    """Graph after the heads: sigmoid scores, the post-processing op, the named outputs.

    box_encodings [1, A, 4] (ty, tx, th, tw); class_logits [1, A, C]; anchors [A, 4] normalized
    (yc, xc, h, w)."""
    import tensorflow as tf

    anchors = np.asarray(anchors, np.float32)
    if anchors.ndim != 2 or anchors.shape[1] != 4:
        raise ValueError(f"anchors must be [A, 4] (yc, xc, h, w), not {list(anchors.shape)}")
    n = int(settings.max_detections)

    @tf.function(experimental_implements=implements_signature(settings))
    def post_process(boxes_in, scores_in, anchors_in):
        # Placeholder body: the converter replaces this whole function with the custom op.
        del boxes_in, scores_in, anchors_in
        return (tf.zeros([1, n, 4], tf.float32), tf.zeros([1, n], tf.float32), tf.zeros([1, n], tf.float32),
                tf.zeros([1], tf.float32))

    scores = tf.sigmoid(class_logits)
    boxes, classes, found_scores, count = post_process(box_encodings, scores, tf.constant(anchors))
    # The kernel does not clip boxes to [0, 1] (near the border they may reach past it, as in Coral's own
    # detectors). Clipping here does not work: the quantizer turns a MAXIMUM/MINIMUM after the op into int8
    # ops wrapped in QUANTIZE/DEQUANTIZE; the runtime clips boxes to the image instead.
    return {"output_0": count, "output_1": found_scores, "output_2": classes, "output_3": boxes}


def flatten_heads(class_levels, box_levels, num_classes):
    """Per-level head outputs ([1, H, W, anchors*C] and [1, H, W, anchors*4]) -> [1, A, C] and [1, A, 4], in the
    anchor order level, row, column, anchor."""
    import tensorflow as tf

    classes = tf.concat([tf.reshape(c, [1, -1, num_classes]) for c in class_levels], axis=1)
    boxes = tf.concat([tf.reshape(b, [1, -1, 4]) for b in box_levels], axis=1)
    return boxes, classes


def wrapper(model, detection):
    """The `wrap(outputs)` for keras_export.export_fixed_batch: model outputs -> detection outputs, with the
    settings of `detection` (max_detections, score_threshold, iou_threshold: `options.Detection`).

    The model says how: `edgekit_anchors` ([A, 4] normalized yc, xc, h, w) and `edgekit_num_classes`
    attributes (set by the zoo), and outputs either (class_levels, box_levels) lists or flat (boxes, classes)."""
    anchors = getattr(model, "edgekit_anchors", None)
    num_classes = getattr(model, "edgekit_num_classes", None)
    if anchors is None or num_classes is None:
        from edgekit.errors import EdgekitError

        raise EdgekitError("detection export needs the model's anchors and class count (a zoo EfficientDet-Lite "
                           "model carries them)")
    settings = Settings(num_classes, detection.max_detections, detection.score_threshold, detection.iou_threshold)

    def wrap(outputs):
        first, second = outputs[0], outputs[1]
        if isinstance(first, (list, tuple)):
            boxes, classes = flatten_heads(first, second, num_classes)
        else:
            boxes, classes = first, second
        return detection_outputs(boxes, classes, anchors, settings)

    return wrap

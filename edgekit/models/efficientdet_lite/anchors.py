"""Anchors and box coding for EfficientDet-Lite, in numpy (no TensorFlow), shared by training code, the
Keras-side decoder and the TFLite export (which hands the normalised anchors to
TFLite_Detection_PostProcess).

Following google/automl `anchors.py`: each level's stride is the image size over the level's feature
size (so an odd map such as 3x3 for P7 at 320 gets stride 106.67), the base anchor is
anchor_scale * stride * 2^octave, and anchors run level, row, column, then (octave, aspect).
"""

import numpy as np

from edgekit.models.efficientdet_lite.presets import ASPECT_RATIOS, MAX_LEVEL, MIN_LEVEL, NUM_SCALES


def feature_sizes(image_size, min_level=MIN_LEVEL, max_level=MAX_LEVEL):
    """[(height, width)] of levels min..max: each level halves with SAME padding, (s - 1) // 2 + 1."""
    height, width = (image_size, image_size) if np.isscalar(image_size) else image_size
    sizes = []
    for level in range(max_level + 1):
        if level >= min_level:
            sizes.append((height, width))
        height, width = (height - 1) // 2 + 1, (width - 1) // 2 + 1
    return sizes


def anchor_count(image_size, min_level=MIN_LEVEL, max_level=MAX_LEVEL):
    """How many anchors a detector of input `image_size` has (its outputs' second dimension)."""
    from edgekit.models.efficientdet_lite.presets import ANCHORS_PER_LOCATION

    return ANCHORS_PER_LOCATION * sum(rows * cols for rows, cols in feature_sizes(image_size, min_level, max_level))


def generate_anchors(image_size, anchor_scale, min_level=MIN_LEVEL, max_level=MAX_LEVEL, num_scales=NUM_SCALES,
                     aspect_ratios=ASPECT_RATIOS):
    """[A, 4] anchors in pixels as (ymin, xmin, ymax, xmax)."""
    height, width = (image_size, image_size) if np.isscalar(image_size) else image_size
    levels = []
    for rows, cols in feature_sizes((height, width), min_level, max_level):
        stride_y, stride_x = height / rows, width / cols
        yc, xc = np.meshgrid(np.arange(rows) * stride_y + stride_y / 2, np.arange(cols) * stride_x + stride_x / 2,
                             indexing="ij")
        half_sizes = []
        for octave in range(num_scales):
            for aspect in aspect_ratios:
                scale = anchor_scale * 2.0 ** (octave / num_scales)
                half_sizes.append((scale * stride_y / np.sqrt(aspect) / 2, scale * stride_x * np.sqrt(aspect) / 2))
        half_h, half_w = np.array(half_sizes).T  # [anchors per location]
        centres_y, centres_x = yc.reshape(-1, 1), xc.reshape(-1, 1)
        boxes = np.stack([centres_y - half_h, centres_x - half_w, centres_y + half_h, centres_x + half_w], -1)
        levels.append(boxes.reshape(-1, 4))
    return np.concatenate(levels).astype(np.float32)


def to_center_form(boxes, image_size=None):
    """(ymin, xmin, ymax, xmax) -> (yc, xc, h, w); divided by the image size when it is given."""
    boxes = np.asarray(boxes, np.float64)
    centre_form = np.stack([(boxes[:, 0] + boxes[:, 2]) / 2, (boxes[:, 1] + boxes[:, 3]) / 2,
                            boxes[:, 2] - boxes[:, 0], boxes[:, 3] - boxes[:, 1]], -1)
    if image_size is not None:
        height, width = (image_size, image_size) if np.isscalar(image_size) else image_size
        centre_form /= np.array([height, width, height, width], np.float64)
    return centre_form.astype(np.float32)


def normalized_anchors(image_size, anchor_scale, **kwargs):
    """[A, 4] anchors as normalised (yc, xc, h, w): what TFLite_Detection_PostProcess takes."""
    return to_center_form(generate_anchors(image_size, anchor_scale, **kwargs), image_size)


def encode_boxes(boxes, anchors):
    """Regression targets (ty, tx, th, tw) of boxes (ymin, xmin, ymax, xmax) against centre-form anchors."""
    boxes, anchors = to_center_form(boxes), np.asarray(anchors, np.float32)
    return np.stack([(boxes[:, 0] - anchors[:, 0]) / anchors[:, 2], (boxes[:, 1] - anchors[:, 1]) / anchors[:, 3],
                     np.log(boxes[:, 2] / anchors[:, 2]), np.log(boxes[:, 3] / anchors[:, 3])], -1)


def decode_boxes(encodings, anchors):
    """(ty, tx, th, tw) regressions + centre-form anchors -> (ymin, xmin, ymax, xmax), in the anchors' units.
    The same decoding TFLite_Detection_PostProcess does with y/x/h/w scales of 1."""
    encodings, anchors = np.asarray(encodings, np.float32), np.asarray(anchors, np.float32)
    yc = encodings[..., 0] * anchors[:, 2] + anchors[:, 0]
    xc = encodings[..., 1] * anchors[:, 3] + anchors[:, 1]
    half_h, half_w = np.exp(encodings[..., 2]) * anchors[:, 2] / 2, np.exp(encodings[..., 3]) * anchors[:, 3] / 2
    return np.stack([yc - half_h, xc - half_w, yc + half_h, xc + half_w], -1)


def _iou(box, others):
    top_left = np.maximum(box[:2], others[:, :2])
    bottom_right = np.minimum(box[2:], others[:, 2:])
    overlap = np.prod(np.clip(bottom_right - top_left, 0, None), axis=1)
    area = np.prod(box[2:] - box[:2])
    areas = np.prod(others[:, 2:] - others[:, :2], axis=1)
    return overlap / np.maximum(area + areas - overlap, 1e-12)


def detect(box_encodings, class_logits, anchors, score_threshold=0.4, iou_threshold=0.5, max_detections=25):
    """Raw detector outputs for one image ([A, 4], [A, C]) -> (boxes, classes, scores), best first.

    Like the TFLite op's fast NMS: each anchor keeps its best class, then greedy NMS over all anchors.
    Boxes come out normalised (ymin, xmin, ymax, xmax) when the anchors are normalised."""
    scores_all = 1.0 / (1.0 + np.exp(-np.asarray(class_logits, np.float32)))
    classes, scores = scores_all.argmax(-1), scores_all.max(-1)
    boxes = decode_boxes(box_encodings, anchors)
    order = np.argsort(-scores, kind="stable")
    order = order[scores[order] >= score_threshold]
    kept = []
    while order.size and len(kept) < max_detections:
        best, rest = order[0], order[1:]
        kept.append(best)
        order = rest[_iou(boxes[best], boxes[rest]) <= iou_threshold]
    kept = np.array(kept, int)
    return boxes[kept], classes[kept], scores[kept]

"""What each anchor of an EfficientDet-Lite should predict for one picture: a class (or background, or
nothing at all) and, for anchors that found an object, the box regression. Numpy only, no TensorFlow: it runs
inside tf.data's parallel map beside the picture's decoding.

Matching follows google/automl `efficientdet` (anchors.py's AnchorLabeler over the object detection API's
ArgMaxMatcher): an anchor whose best intersection over union with an object reaches MATCH_IOU learns that
object; every other anchor is background; and each object also claims the anchor that overlaps it most, even
below the threshold (`force_match_for_each_row`), so that a small or oddly shaped object is never left with
no anchor at all. Anchors whose best match is a crowd region (COCO `iscrowd`, VOC `difficult`) learn nothing.
"""

from collections import namedtuple

import numpy as np

from edgekit.models.efficientdet_lite.anchors import encode_boxes

MATCH_IOU = 0.5
# Class targets of anchors that are not an object's: background learns "no class"; IGNORED adds no loss.
BACKGROUND, IGNORED = -1, -2

AnchorTargets = namedtuple("AnchorTargets", "classes boxes positives")
"""classes: int32 [A] class index, BACKGROUND or IGNORED; boxes: float32 [A, 4] regression (ty, tx, th, tw),
zero where the anchor is no object's; positives: how many anchors learn an object."""


def corner_anchors(center_anchors):
    """Centre-form anchors (yc, xc, h, w) -> corners (ymin, xmin, ymax, xmax), the same units."""
    a = np.asarray(center_anchors, np.float32)
    return np.stack([a[:, 0] - a[:, 2] / 2, a[:, 1] - a[:, 3] / 2, a[:, 0] + a[:, 2] / 2, a[:, 1] + a[:, 3] / 2], -1)


def overlaps(anchors, boxes):
    """Intersection over union [A, N] of corner anchors [A, 4] with boxes [N, 4] (ymin, xmin, ymax, xmax)."""
    # One [A, N] array per step (not [A, N, 2] pairs): this runs for every picture of every epoch.
    ay0, ax0, ay1, ax1 = (anchors[:, i:i + 1] for i in range(4))
    by0, bx0, by1, bx1 = boxes.T
    height = np.minimum(ay1, by1) - np.maximum(ay0, by0)
    np.clip(height, 0.0, None, out=height)
    width = np.minimum(ax1, bx1) - np.maximum(ax0, bx0)
    np.clip(width, 0.0, None, out=width)
    inter = height * width
    union = (ay1 - ay0) * (ax1 - ax0) + ((by1 - by0) * (bx1 - bx0)) - inter
    return inter / np.maximum(union, 1e-12)


def match_anchors(boxes, labels, crowd, center_anchors, corners=None, match_iou=MATCH_IOU):
    """AnchorTargets of one picture.

    boxes: [N, 4] (ymin, xmin, ymax, xmax) normalised to the model's input like the anchors; labels: [N] class
    indices; crowd: [N] bools; center_anchors: [A, 4] normalised (yc, xc, h, w); corners: the same anchors as
    corners, when the caller keeps them (they do not change from picture to picture)."""
    center_anchors = np.asarray(center_anchors, np.float32)
    count = len(center_anchors)
    classes = np.full(count, BACKGROUND, np.int32)
    regressions = np.zeros((count, 4), np.float32)
    boxes = np.asarray(boxes, np.float32).reshape(-1, 4)
    if not len(boxes):
        return AnchorTargets(classes, regressions, 0)
    labels, crowd = np.asarray(labels, np.int32), np.asarray(crowd, bool)
    corners = corner_anchors(center_anchors) if corners is None else corners
    iou = overlaps(corners, boxes)
    best = iou.argmax(axis=1)
    matched = iou[np.arange(count), best] >= match_iou
    # Each object's best anchor is its own whatever the overlap (later objects win a shared anchor, as in
    # the ArgMaxMatcher's forced matches).
    owned = iou.argmax(axis=0)
    best[owned] = np.arange(len(boxes))
    matched[owned] = True
    is_crowd = crowd[best]
    positive = matched & ~is_crowd
    classes[positive] = labels[best[positive]]
    classes[matched & is_crowd] = IGNORED
    if positive.any():
        regressions[positive] = encode_boxes(boxes[best[positive]], center_anchors[positive])
    return AnchorTargets(classes, regressions, int(positive.sum()))

"""Per-class AP and the precision-recall curve from one COCOeval run (`metrics.coco_details`), on hand-made boxes
whose figures are worked out by hand from COCO's 101-point interpolation: at each recall point r, the best
precision reached at recall r or above (0 past the last recall reached)."""

import numpy as np
import pytest

from edgekit.evaluation import metrics

IMAGES = {1: ("a.jpg", 200, 200), 2: ("b.jpg", 200, 200)}
FACE, COIN, CUP, KEY, RING = 1, 2, 3, 4, 5
CATEGORIES = {FACE: "face", COIN: "coin", CUP: "cup", KEY: "key", RING: "ring"}


def box(image, category, x, y, w, h, crowd=0):
    return {"image_id": image, "category_id": category, "bbox": [x, y, w, h], "area": float(w * h),
            "iscrowd": crowd}


def found(image, category, score, x, y, w, h):
    return {"image_id": image, "category_id": category, "bbox": [x, y, w, h], "score": score}


ANNOTATIONS = [
    box(1, FACE, 10, 10, 50, 50), box(2, FACE, 100, 100, 60, 40),
    box(1, COIN, 120, 20, 40, 40), box(2, COIN, 20, 120, 40, 40),
    box(1, CUP, 10, 120, 40, 40, crowd=1),  # a crowd box only: COCO ignores it, so the cup has no ground truth
    box(1, KEY, 60, 130, 30, 50),
    box(2, RING, 100, 0, 100, 100)]
DETECTIONS = [
    # Both faces, exactly: AP 1 at every IoU threshold.
    found(1, FACE, 0.9, 10, 10, 50, 50), found(2, FACE, 0.8, 100, 100, 60, 40),
    # The most confident coin is a false alarm, then one of the two coins exactly: precision 0.5 up to recall
    # 0.5 (51 of the 101 points), nothing after, at every IoU threshold: AP = AP50 = 0.5 * 51 / 101.
    found(1, COIN, 0.95, 150, 150, 30, 30), found(2, COIN, 0.7, 20, 120, 40, 40),
    found(1, CUP, 0.6, 10, 120, 40, 40),
    # The key is never found: AP 0. The ring's box is 72 of its 100 rows: IoU 0.72, a hit at the thresholds
    # 0.5 to 0.7 (5 of COCO's 10) and a miss from 0.75 on: AP 0.5, AP50 1.
    found(2, RING, 0.5, 100, 0, 100, 72)]
COIN_AP = 0.5 * 51 / 101


def test_per_class_ap_and_map_by_hand():
    details = metrics.coco_details(IMAGES, CATEGORIES, ANNOTATIONS, DETECTIONS)
    assert details.per_class[CUP] is None
    expected = {FACE: (1.0, 1.0), COIN: (COIN_AP, COIN_AP), KEY: (0.0, 0.0), RING: (0.5, 1.0)}
    for category, (ap, ap50) in expected.items():
        assert details.per_class[category] == (pytest.approx(ap, abs=1e-9), pytest.approx(ap50, abs=1e-9))
        assert details.per_class[category].ap50 == pytest.approx(ap50, abs=1e-9)
    # COCO's mAP is the mean over the categories with ground truth: the cup counts for nothing.
    assert details.map == pytest.approx((1 + COIN_AP + 0 + 0.5) / 4, abs=1e-9)
    assert details.map50 == pytest.approx((1 + COIN_AP + 0 + 1) / 4, abs=1e-9)
    assert (details.images, details.annotations, details.detections) == (2, 7, 6)
    # coco_map is the same run's headline figures.
    assert tuple(metrics.coco_map(IMAGES, CATEGORIES, ANNOTATIONS, DETECTIONS)) == (
        details.map, details.map50, 2, 7, 6)


def test_precision_recall_curve_at_iou_half():
    curve = metrics.coco_details(IMAGES, CATEGORIES, ANNOTATIONS, DETECTIONS).pr_curve
    recall = np.array(curve["recall"])
    assert len(recall) == 101 and recall[0] == 0 and recall[-1] == 1 and np.all(np.diff(recall) > 0)
    # Up to recall 0.5: face 1, coin 0.5, key 0, ring 1; beyond it the coin drops to 0.
    expected = np.where(recall <= 0.5 + 1e-9, (1 + 0.5 + 0 + 1) / 4, (1 + 0 + 0 + 1) / 4)
    assert curve["precision"] == pytest.approx(expected.tolist(), abs=1e-9)
    assert sorted(curve["per_class"]) == [FACE, COIN, KEY, RING]
    assert curve["per_class"][COIN] == pytest.approx(np.where(recall <= 0.5 + 1e-9, 0.5, 0.0).tolist())
    assert all(type(p) is float for p in curve["precision"] + curve["recall"])  # ready for JSON
    # The curve's mean is mAP@0.5, as COCOeval.summarize computes it.
    details = metrics.coco_details(IMAGES, CATEGORIES, ANNOTATIONS, DETECTIONS)
    assert np.mean(curve["precision"]) == pytest.approx(details.map50, abs=1e-9)


def test_nothing_detected_scores_zero_where_there_is_ground_truth():
    details = metrics.coco_details(IMAGES, CATEGORIES, ANNOTATIONS, [])
    assert (details.map, details.map50, details.detections) == (0.0, 0.0, 0)
    assert details.per_class == {FACE: (0.0, 0.0), COIN: (0.0, 0.0), CUP: None, KEY: (0.0, 0.0),
                                 RING: (0.0, 0.0)}
    assert details.pr_curve["precision"] == [0.0] * 101 and len(details.pr_curve["recall"]) == 101
    assert sorted(details.pr_curve["per_class"]) == [FACE, COIN, KEY, RING]


def test_no_ground_truth_at_all():
    details = metrics.coco_details(IMAGES, CATEGORIES, [], DETECTIONS)
    assert details.per_class == dict.fromkeys(CATEGORIES)
    assert (details.map, details.map50) == (0.0, 0.0)
    assert details.pr_curve["precision"] == [0.0] * 101 and details.pr_curve["per_class"] == {}


def test_agrees_with_the_evaluation_when_only_one_class_is_found():
    """A category that has ground truth in the evaluated run but no detection at all scores 0 there too,
    as the empty run says."""
    faces = [d for d in DETECTIONS if d["category_id"] == FACE]
    details = metrics.coco_details(IMAGES, CATEGORIES, ANNOTATIONS, faces)
    assert details.per_class[FACE] == (1.0, 1.0) and details.per_class[CUP] is None
    assert details.per_class[COIN] == (0.0, 0.0) == details.per_class[RING]
    assert details.map == pytest.approx(1 / 4)

"""What each anchor learns (matching, box regressions), how a picture lands on the detector's input (the runtime's
letterbox, scale jitter and flips moving the boxes along), and the two losses against hand-computed values."""

import math

import numpy as np
import pytest
from PIL import Image

from edgekit.calibration.data import Preprocess, prepare
from edgekit.models.efficientdet_lite.anchors import decode_boxes, normalized_anchors
from edgekit.runtime import images
from edgekit.training import box_input
from edgekit.training.detection_targets import BACKGROUND, IGNORED, corner_anchors, match_anchors
from edgekit.training.labelled_boxes import BoxPicture

ANCHORS = normalized_anchors((320, 320), 3.0)
CORNERS = corner_anchors(ANCHORS)


def _picture(boxes, labels=None, crowd=None):
    boxes = np.asarray(boxes, np.float32).reshape(-1, 4)
    labels = np.zeros(len(boxes), np.int32) if labels is None else np.asarray(labels, np.int32)
    crowd = np.zeros(len(boxes), bool) if crowd is None else np.asarray(crowd, bool)
    return boxes, labels, crowd


def test_a_box_equal_to_an_anchor_is_learnt_there_with_a_zero_regression():
    index = 5000
    boxes, labels, crowd = _picture(CORNERS[index:index + 1], [1])
    targets = match_anchors(boxes, labels, crowd, ANCHORS)
    assert targets.classes[index] == 1
    np.testing.assert_allclose(targets.boxes[index], 0.0, atol=1e-5)
    # Every positive anchor's regression decodes back to the box itself.
    positive = targets.classes >= 0
    decoded = decode_boxes(targets.boxes[positive], ANCHORS[positive])
    np.testing.assert_allclose(decoded, np.repeat(boxes, positive.sum(), 0), atol=1e-5)
    assert targets.positives == positive.sum() >= 1
    assert set(np.unique(targets.classes)) == {BACKGROUND, 1}


def test_a_box_too_small_for_any_anchor_still_claims_its_best_one():
    boxes, labels, crowd = _picture([[0.50, 0.50, 0.51, 0.515]], [0])
    targets = match_anchors(boxes, labels, crowd, ANCHORS)
    assert targets.positives == 1
    best = np.argmax([np.prod(np.clip(np.minimum(c[2:], boxes[0, 2:]) - np.maximum(c[:2], boxes[0, :2]), 0, None))
                      / (np.prod(c[2:] - c[:2]) + np.prod(boxes[0, 2:] - boxes[0, :2])
                         - np.prod(np.clip(np.minimum(c[2:], boxes[0, 2:]) - np.maximum(c[:2], boxes[0, :2]), 0,
                                           None)))
                      for c in CORNERS])
    assert np.flatnonzero(targets.classes == 0).tolist() == [best]


def test_anchors_on_a_crowd_region_learn_nothing_and_an_empty_picture_is_all_background():
    boxes, labels, crowd = _picture([[0.1, 0.1, 0.5, 0.5], [0.6, 0.6, 0.9, 0.9]], [0, 1], [True, False])
    targets = match_anchors(boxes, labels, crowd, ANCHORS)
    assert (targets.classes == IGNORED).sum() >= 1 and (targets.classes == 1).sum() >= 1
    assert not (targets.classes == 0).any()
    assert not targets.boxes[targets.classes < 0].any()
    empty = match_anchors(np.zeros((0, 4)), [], [], ANCHORS)
    assert empty.positives == 0 and (empty.classes == BACKGROUND).all() and not empty.boxes.any()


def _square_picture(tmp_path, size=(200, 100), square=(120, 20, 170, 60)):
    """A black picture with one white rectangle: its box is known exactly."""
    pixels = np.zeros((size[1], size[0], 3), np.uint8)
    x0, y0, x1, y1 = square
    pixels[y0:y1, x0:x1] = 255
    path = tmp_path / "square.png"
    Image.fromarray(pixels).save(path)
    return BoxPicture(str(path), size[0], size[1], np.array([square], np.float32), np.array([0], np.int32),
                      np.array([False]))


def test_without_augmentation_a_picture_lands_as_the_runtime_letterboxes_it(tmp_path):
    item = _square_picture(tmp_path)
    placed = box_input.place_picture(item, (128, 128))
    expected = prepare(images.load_image(item.path, "RGB"), Preprocess((128, 128), box_input.RESIZE, True))
    np.testing.assert_array_equal(placed.pixels, expected)
    # 200x100 fits 128 wide: scale 0.64; the box is (ymin, xmin, ymax, xmax) over the 128-pixel input.
    np.testing.assert_allclose(placed.boxes, [[20 * .64 / 128, 120 * .64 / 128, 60 * .64 / 128, 170 * .64 / 128]],
                               atol=1e-6)


@pytest.mark.parametrize("seed", range(6))
def test_jitter_and_flip_move_the_box_with_the_pixels(tmp_path, seed):
    item = _square_picture(tmp_path)
    placed = box_input.place_picture(item, (128, 128), jitter=(0.5, 1.5), flip=True, seed=seed)
    white = np.argwhere(placed.pixels[..., 0] > 127)
    if not len(placed.boxes):
        # Cut off by the window: then little of the square may be left in the picture.
        assert len(white) < 0.4 * (50 * 40) * 1.5 ** 2 * .64 ** 2
        return
    ymin, xmin, ymax, xmax = placed.boxes[0] * 128
    assert white[:, 0].min() == pytest.approx(ymin, abs=1.5) and white[:, 0].max() + 1 == pytest.approx(ymax, abs=1.5)
    assert white[:, 1].min() == pytest.approx(xmin, abs=1.5) and white[:, 1].max() + 1 == pytest.approx(xmax, abs=1.5)


def test_flips_happen_about_half_the_time(tmp_path):
    item = _square_picture(tmp_path)
    # The square sits in the right half; flipped, in the left half.
    lefts = [box_input.place_picture(item, (128, 128), flip=True, seed=s).boxes[0, 1] < 0.25 for s in range(40)]
    assert 10 <= sum(lefts) <= 30


def test_focal_and_box_losses_match_hand_computed_values():
    from edgekit.training.detection_loss import BoxLoss, FocalLoss

    logits = np.array([[[2.0, -1.0], [0.5, 0.0], [-3.0, 1.0]]], np.float32)   # 3 anchors, 2 classes
    classes = np.array([[1, BACKGROUND, IGNORED]], np.float32)

    def focal(p, positive, alpha=0.25, gamma=1.5):
        p_t = p if positive else 1 - p
        return (alpha if positive else 1 - alpha) * (1 - p_t) ** gamma * -math.log(p_t)

    def sigmoid(x):
        return 1 / (1 + math.exp(-x))

    expected = (focal(sigmoid(2.0), False) + focal(sigmoid(-1.0), True)
                + focal(sigmoid(0.5), False) + focal(sigmoid(0.0), False)) / (1 + 1)
    assert float(FocalLoss(2)(classes, logits)) == pytest.approx(expected, rel=1e-5)
    predicted = np.array([[[0.05, -0.3, 0.0, 0.2], [9.0, 9.0, 9.0, 9.0]]], np.float32)
    targets = np.array([[[0.0, 0.0, 0.0, 0.0, 1.0], [0.0, 0.0, 0.0, 0.0, 0.0]]], np.float32)
    huber = [0.5 * 0.05 ** 2, 0.1 * (0.3 - 0.05), 0.0, 0.1 * (0.2 - 0.05)]
    assert float(BoxLoss()(targets, predicted)) == pytest.approx(sum(huber) / ((1 + 1) * 4), rel=1e-5)

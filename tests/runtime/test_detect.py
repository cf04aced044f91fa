"""Detection: pycoral's BBox expectations, and real TFLite_Detection_PostProcess models in all three
output layouts decoding known anchors and encodings into known pixel boxes."""

import math

import numpy as np
import pytest
from ai_edge_litert.interpreter import Interpreter
from detection_model import LAYOUTS, build_detection_model
from PIL import Image

from edgekit.runtime import images
from edgekit.runtime.adapters import common, detect
from edgekit.runtime.adapters.detect import BBox

# Anchors (yc, xc, h, w) and encodings (ty, tx, th, tw) chosen so every step is exact in float32:
# with y_scale 10, ty = 2.5 moves the centre by 0.25 anchor heights; th = tw = 0 keeps the size.
ANCHORS = [[0.25, 0.25, 0.5, 0.5], [0.5, 0.75, 0.5, 0.25], [0.25, 0.25, 0.5, 0.5], [0.8, 0.2, 0.2, 0.2]]
ENCODINGS = [[0, 0, 0, 0], [2.5, 0, 0, 0], [0, 0, 0, 0], [0, 0, 0, 0]]
# Anchor 2 repeats anchor 0 with a lower score (NMS drops it); anchor 3 is under the 0.3 NMS floor.
SCORES = [[0.1, 0.9], [0.8, 0.05], [0.0, 0.7], [0.2, 0.1]]
INPUT_HW = (120, 160)


def open_detector(tmp_path, layout, **options):
    path = build_detection_model(tmp_path / f"detect_{layout}.tflite", ANCHORS, ENCODINGS, SCORES,
                                 layout=layout, input_hw=INPUT_HW, **options)
    interpreter = Interpreter(model_path=str(path), num_threads=1)
    interpreter.allocate_tensors()
    interpreter.invoke()
    return interpreter


# --- BBox, as pycoral's tests pin it ----------------------------------------------------------

def test_iou_of_overlapping_boxes():
    assert BBox.iou(BBox(0, 0, 200, 200), BBox(100, 100, 300, 300)) == pytest.approx(0.14286, abs=1e-5)


def test_disjoint_boxes():
    a, b = BBox(0, 0, 10, 10), BBox(20, 20, 30, 30)
    assert BBox.iou(a, b) == 0.0
    assert not BBox.intersect(a, b).valid
    assert BBox.union(a, b) == BBox(0, 0, 30, 30) and BBox.union(a, b).valid


def test_bbox_geometry():
    box = BBox(xmin=10, ymin=20, xmax=50, ymax=100)
    assert (box.width, box.height, box.area, box.valid) == (40, 80, 3200, True)
    assert box.scale(2, 0.5) == BBox(20, 10, 100, 50)
    assert box.translate(-10, 5) == BBox(0, 25, 40, 105)
    assert BBox(1.7, 2.2, 3.9, 4.5).map(int) == BBox(1, 2, 3, 4)
    assert BBox.intersect(box, BBox(30, 0, 80, 40)) == BBox(30, 20, 50, 40)
    assert BBox.iou(box, box) == 1.0
    assert BBox(5, 5, 5, 5).valid and not BBox(6, 5, 5, 5).valid   # empty is valid, inverted is not
    assert isinstance(box, tuple) and box.xmin == box[0]


# --- get_objects on real post-processing models -------------------------------------------------

EXPECTED = [detect.Object(id=1, score=pytest.approx(0.9), bbox=BBox(0, 0, 80, 60)),
            detect.Object(id=0, score=pytest.approx(0.8), bbox=BBox(100, 45, 140, 105))]


@pytest.mark.parametrize("layout", LAYOUTS)
def test_every_output_layout_decodes_the_same_boxes(tmp_path, layout):
    interpreter = open_detector(tmp_path, layout)
    assert common.input_size(interpreter) == (160, 120)
    objects = detect.get_objects(interpreter)
    assert objects == EXPECTED
    assert all(type(o.id) is int and type(o.bbox.xmin) is int for o in objects)


def test_signature_layout_really_reads_the_signature(tmp_path):
    # Its positional order is classes, count, boxes, scores: the positional rules would fail on it.
    interpreter = open_detector(tmp_path, "signature")
    assert [d["name"] for d in interpreter.get_output_details()][:2] == ["detection_classes", "num_detections"]
    boxes, classes, scores, count = detect.get_raw_outputs(interpreter)
    assert count == 2 and boxes.shape == (5, 4)
    assert np.allclose(boxes[1], [0.375, 0.625, 0.875, 0.875])


def test_score_threshold_and_count(tmp_path):
    interpreter = open_detector(tmp_path, "boxes-first")
    assert [o.id for o in detect.get_objects(interpreter, score_threshold=0.85)] == [1]
    assert detect.get_objects(interpreter, score_threshold=0.95) == []
    # max_detections 1: only the best survives. In the scores-first layout the 4th output (classes)
    # then holds one element, which pycoral's size rule would take for the boxes-first layout.
    single = open_detector(tmp_path, "scores-first", max_detections=1)
    assert detect.get_objects(single) == EXPECTED[:1]


def test_a_classifier_is_not_read_as_a_detector(coral):
    interpreter = Interpreter(model_path=str(coral("mobilenet_v1_0.25_128_quant.tflite")), num_threads=1)
    interpreter.allocate_tensors()
    with pytest.raises(ValueError, match="not a detection model: 1 output"):
        detect.get_objects(interpreter)


def test_size_encodings_use_the_exponential(tmp_path):
    # th = 5 ln 2 with h_scale 5 doubles the anchor height: box (0.8 +- 0.2) high, x unchanged.
    path = build_detection_model(tmp_path / "grow.tflite", [[0.8, 0.2, 0.2, 0.2]],
                                 [[0, 0, 5 * math.log(2), 0]], [[0.9]], input_hw=INPUT_HW)
    interpreter = Interpreter(model_path=str(path), num_threads=1)
    interpreter.allocate_tensors()
    interpreter.invoke()
    boxes, _, _, count = detect.get_raw_outputs(interpreter)
    assert count == 1 and np.allclose(boxes[0], [0.6, 0.1, 1.0, 0.3], atol=1e-6)


def test_letterboxed_image_boxes_come_back_in_image_pixels(tmp_path):
    interpreter = open_detector(tmp_path, "boxes-first")
    image = Image.new("RGB", (320, 160), (90, 120, 200))
    _, scale = common.set_resized_input(interpreter, image.size,
                                        lambda size: images.resize(image, size, "tflite-bilinear"))
    assert scale == (0.5, 0.5)
    tensor = common.input_tensor(interpreter).copy()  # a held view would block invoke()
    assert tensor[:80].min() == 90 and tensor[80:].max() == 0   # 160x80 image, bottom 40 rows padded
    interpreter.invoke()
    objects = detect.get_objects(interpreter, image_scale=scale)
    # Normalized (ymin, xmin, ymax, xmax) * input size / 0.5: twice the input-pixel boxes.
    assert [o.bbox for o in objects] == [BBox(0, 0, 160, 120), BBox(200, 90, 280, 210)]

"""Segmentation: deeplab on the bird (the test data row), and masks from argmax or id outputs."""

import numpy as np
import pytest
from ai_edge_litert.interpreter import Interpreter
from detection_model import build_resize_model

from edgekit.runtime import images
from edgekit.runtime.adapters import common, segment

BIRD = 3  # PASCAL VOC


def open_interpreter(path):
    interpreter = Interpreter(model_path=str(path), num_threads=1)
    interpreter.allocate_tensors()
    return interpreter


def test_deeplab_bird_lanczos_iou(coral):
    interpreter = open_interpreter(coral("deeplabv3_mnv2_dm05_pascal_quant.tflite"))
    picture = images.resize(images.load_image(coral("bird_segmentation.bmp")), common.input_size(interpreter),
                            "lanczos")
    common.set_normalized_input(interpreter, np.asarray(picture))
    interpreter.invoke()
    mask = segment.get_mask(interpreter)
    reference = np.asarray(images.load_image(coral("bird_segmentation_mask.bmp"), "L"))
    assert mask.shape == reference.shape == (513, 513)
    assert segment.mask_iou(mask, reference) > 0.90
    areas = segment.class_areas(mask)
    assert areas[0].id == 0 and areas[1].id == BIRD and 0.1 < areas[1].fraction < 0.3
    assert sum(a.fraction for a in areas) == pytest.approx(1.0)


def test_logits_output_gives_the_argmax(tmp_path):
    # An identity RESIZE_BILINEAR passes [1, H, W, C] scores straight through: a logits "model".
    interpreter = open_interpreter(build_resize_model(tmp_path / "logits.tflite", (4, 6), (4, 6), channels=5))
    logits = np.random.RandomState(2).rand(1, 4, 6, 5).astype(np.float32)
    interpreter.set_tensor(interpreter.get_input_details()[0]["index"], logits)
    interpreter.invoke()
    mask = segment.get_mask(interpreter)
    assert mask.shape == (4, 6) and np.array_equal(mask, logits[0].argmax(axis=-1))
    assert segment.get_output(interpreter).shape == (4, 6, 5)


def test_id_output_is_taken_as_is_not_dequantized(coral):
    # split_concat's first output copies channel 0 of its first input, a uint8 [1, 8, 8, 1] tensor
    # quantized at 1/128: a mask read through dequantization would come out as fractions.
    interpreter = open_interpreter(coral("tools/split_concat.tflite"))
    ids = np.arange(64, dtype=np.uint8).reshape(8, 8) % 21
    for details in interpreter.get_input_details():
        data = np.zeros(details["shape"], np.uint8)
        if details["index"] == interpreter.get_input_details()[0]["index"]:
            data[0, :, :, 0] = ids
        interpreter.set_tensor(details["index"], data)
    interpreter.invoke()
    mask = segment.get_mask(interpreter)
    assert mask.dtype == np.uint8 and np.array_equal(mask, ids)


def test_mask_helpers():
    a = np.array([[0, 3], [3, 3]])
    assert segment.mask_iou(a, a) == 1.0
    assert segment.mask_iou(a, np.array([[0, 3], [3, 0]])) == pytest.approx(3 / 5)   # pycoral's array_iou
    with pytest.raises(ValueError):
        segment.mask_iou(a, np.zeros((3, 3)))
    assert segment.class_areas(a) == [(3, 0.75), (0, 0.25)]
    big = segment.resize_mask(np.array([[1, 2], [3, 4]], dtype=np.int64), (4, 2))
    assert big.dtype == np.int64 and big.tolist() == [[1, 1, 2, 2], [3, 3, 4, 4]]

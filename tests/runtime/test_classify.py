"""Classification: the test data README's expectation rows on the CPU, resize method pinned per row."""

import numpy as np
import pytest
from ai_edge_litert.interpreter import Interpreter

from edgekit.runtime import images
from edgekit.runtime.adapters import classify, common
from edgekit.runtime.labels import read_label_file

TIGER_CAT, EGYPTIAN_CAT = 283, 286


def classify_image(coral, model, image, method, mode="RGB", top_k=3):
    interpreter = Interpreter(model_path=str(coral(model)), num_threads=1)
    interpreter.allocate_tensors()
    picture = images.load_image(coral(image), mode)
    if method:
        picture = images.resize(picture, common.input_size(interpreter), method)
    assert picture.size == common.input_size(interpreter)
    common.set_normalized_input(interpreter, np.asarray(picture))
    interpreter.invoke()
    return classify.get_classes(interpreter, top_k=top_k)


def score_of(classes, class_id):
    return {c.id: c.score for c in classes}.get(class_id)


@pytest.mark.parametrize("model,method,expected,minimum", [
    ("mobilenet_v1_0.25_128_quant.tflite", "tflite-bilinear", TIGER_CAT, 0.25),
    ("mobilenet_v1_0.5_160_quant.tflite", "tflite-bilinear", EGYPTIAN_CAT, 0.51),
    ("mobilenet_v2_1.0_224_quant.tflite", "tflite-bilinear", EGYPTIAN_CAT, 0.7),
])
def test_cat_in_top3_with_half_pixel_bilinear(coral, model, method, expected, minimum):
    classes = classify_image(coral, model, "cat.bmp", method)
    assert len(classes) == 3
    assert score_of(classes, expected) is not None and score_of(classes, expected) >= minimum, classes


def test_mobilenet_v1_050_160_nearest_top1(coral):
    classes = classify_image(coral, "mobilenet_v1_0.5_160_quant.tflite", "cat.bmp", "nearest", top_k=1)
    assert classes[0].id == EGYPTIAN_CAT and classes[0].score > 0.67
    labels = read_label_file(coral("imagenet_labels.txt"))
    assert labels[classes[0].id] == "Egyptian cat"


def test_the_resize_method_matters(coral):
    # Why each row pins its method: Pillow's bilinear (antialiased) misses the 0.25_128 row.
    classes = classify_image(coral, "mobilenet_v1_0.25_128_quant.tflite", "cat.bmp", "bilinear")
    assert (score_of(classes, TIGER_CAT) or 0) < 0.25


def test_lstm_mnist_nine(coral):
    # Input scale 1/255, zero point 0: pixels go in as they are, no resize (28x28 already).
    classes = classify_image(coral, "keras_lstm_mnist_ptq.tflite", "mnist_nine.bmp", None, mode="L")
    assert classes[0].id == 9 and classes[0].score >= 0.7


def test_invalid_model_fails_clearly(coral):
    with pytest.raises((RuntimeError, ValueError)) as error:
        interpreter = Interpreter(model_path=str(coral("invalid_models/model_invoking_error.tflite")))
        interpreter.allocate_tensors()
        interpreter.invoke()
    assert "fake-op-double" in str(error.value)


def test_scores_are_dequantized(coral):
    interpreter = Interpreter(model_path=str(coral("mobilenet_v1_0.25_128_quant.tflite")), num_threads=1)
    interpreter.allocate_tensors()
    common.set_input(interpreter, np.zeros((128, 128, 3), np.uint8))
    interpreter.invoke()
    scores = classify.get_scores(interpreter)
    assert scores.shape == (1001,) and scores.dtype == np.float32
    assert 0 <= scores.min() and scores.max() <= 1 and classify.num_classes(interpreter) == 1001


def test_top_k_threshold_and_ties():
    scores = np.array([0.1, 0.5, 0.2, 0.5, 0.05], dtype=np.float32)
    assert classify.get_classes_from_scores(scores) == [
        (1, 0.5), (3, 0.5), (2, pytest.approx(0.2)), (0, pytest.approx(0.1)), (4, pytest.approx(0.05))]
    assert [c.id for c in classify.get_classes_from_scores(scores, top_k=2)] == [1, 3]
    assert [c.id for c in classify.get_classes_from_scores(scores, score_threshold=0.2)] == [1, 3, 2]
    assert classify.get_classes_from_scores(scores, top_k=0) == []
    assert classify.get_classes_from_scores(scores, top_k=10, score_threshold=0.9) == []
    found = classify.get_classes_from_scores(scores, top_k=1)[0]
    assert isinstance(found, classify.Class) and type(found.id) is int and type(found.score) is float

"""adapters.common on real models: sizes, the normalization rule, letterboxing, dequantized outputs."""

import numpy as np
import pytest
from ai_edge_litert.interpreter import Interpreter
from PIL import Image

from edgekit.runtime import images
from edgekit.runtime.adapters import common


def open_interpreter(path):
    interpreter = Interpreter(model_path=str(path), num_threads=1)
    interpreter.allocate_tensors()
    return interpreter


@pytest.fixture
def mobilenet(coral):
    return open_interpreter(coral("mobilenet_v1_0.25_128_quant.tflite"))


def test_input_size_and_channels(mobilenet, coral):
    assert common.input_size(mobilenet) == (128, 128)
    assert common.input_channels(mobilenet) == 3
    lstm = open_interpreter(coral("keras_lstm_mnist_ptq.tflite"))  # [1, 28, 28]: no channel axis
    assert common.input_size(lstm) == (28, 28)
    assert common.input_channels(lstm) == 1
    assert common.input_tensor(lstm).shape == (28, 28)


def test_raw_pixels_when_quantization_is_the_normalization():
    pixels = np.arange(256, dtype=np.uint8).reshape(16, 16)
    # mobilenet: scale 1/128, zero point 128; mean 128, std 128 -> fed as they are (the same array).
    assert common.normalize(pixels, np.uint8, 1 / 128, 128, 128, 128) is pixels
    # No mean/std given: a uint8 model gets raw pixels.
    assert common.normalize(pixels, np.uint8, 1 / 255, 0) is pixels
    # An unquantized uint8 input (scale 0) holds real values: pixels as they are.
    assert common.normalize(pixels, np.uint8, 0.0, 0) is pixels
    # Within pycoral's 1e-5 tolerance still raw; outside it, not.
    assert common.normalize(pixels, np.uint8, 1 / 128, 128, 128 + 5e-6, 128) is pixels
    assert common.normalize(pixels, np.uint8, 1 / 128, 128, 127, 128) is not pixels


def test_quantizing_formula_and_clipping():
    pixels = np.array([0, 64, 127.5, 255], dtype=np.float32)
    # Model normalization x = (p - 127.5) / 127.5, input quantized at scale 1/128, zero point 128.
    q = common.normalize(pixels, np.uint8, 1 / 128, 128, 127.5, 127.5)
    expected = np.round((pixels - 127.5) / (127.5 / 128) + 128)
    assert q.dtype == np.uint8 and q.tolist() == np.clip(expected, 0, 255).tolist() == [0, 64, 128, 255]
    # Clipping: x in [0, 1] quantized at 1/510 would need 0..510.
    q = common.normalize(np.array([0, 100, 255]), np.uint8, 1 / 510, 0, 0, 255)
    assert q.tolist() == [0, 200, 255]


def test_int8_and_float32_inputs():
    pixels = np.array([0, 128, 255], dtype=np.uint8)
    # int8 default: the uint8 model shifted by 128 (pixel p -> p - 128).
    q = common.normalize(pixels, np.int8, 1 / 128, 0)
    assert q.dtype == np.int8 and q.tolist() == [-128, 0, 127]
    # int8 with an explicit [0, 1] normalization quantized at 1/255, zero point -128.
    assert common.normalize(pixels, np.int8, 1 / 255, -128, 0, 255).tolist() == [-128, 0, 127]
    # float32: (p - mean) / std, default [-1, 1].
    f = common.normalize(pixels, np.float32)
    assert f.dtype == np.float32 and np.allclose(f, [-1, 0.00392157, 1])
    assert np.allclose(common.normalize(pixels, np.float32, mean=0, std=255), [0, 128 / 255, 1])


def test_set_normalized_input_writes_the_tensor(mobilenet):
    pixels = np.full((128, 128, 3), 200, dtype=np.uint8)
    common.set_normalized_input(mobilenet, pixels, mean=0, std=255)  # model wants [0, 1] here
    tensor = common.input_tensor(mobilenet)
    assert tensor.dtype == np.uint8 and int(tensor[5, 5, 1]) == round(200 / 255 * 128 + 128)


def test_letterbox_keeps_aspect_and_pads_bottom_right(mobilenet, coral):
    cat = images.load_image(coral("cat.bmp"))  # 512 x 341
    calls = []

    def resize(size):
        calls.append(size)
        return images.resize(cat, size, "tflite-bilinear")

    resized, scale = common.set_resized_input(mobilenet, cat.size, resize)
    assert scale == (0.25, 0.25) and calls == [(128, 85)] and resized.size == (128, 85)  # as pycoral
    tensor = common.input_tensor(mobilenet)
    assert tensor[85:].max() == 0 and tensor[:85].max() > 0   # padding rows are zeros
    assert np.array_equal(tensor[:85], np.asarray(resize((128, 85))))
    # Tall images pad on the right instead.
    def fill(value, channels=3):
        return lambda s: np.full((s[1], s[0], channels)[: 2 + (channels > 0)], value, np.uint8)

    canvas, _, scale = common.letterbox((100, 400), (128, 128), fill(9))
    assert scale == 0.32 and canvas[:, 32:].max() == 0 and canvas[:, :32].min() == 9
    # Models without a channel axis get a 2-D canvas.
    canvas, _, _ = common.letterbox((56, 28), (28, 28), fill(7, 0), 0)
    assert canvas.shape == (28, 28) and canvas[:14].min() == 7 and canvas[14:].max() == 0


def test_output_tensor_dequantizes(mobilenet, coral):
    pixels = np.asarray(images.resize(images.load_image(coral("cat.bmp")), (128, 128), "tflite-bilinear"))
    common.set_input(mobilenet, pixels)
    mobilenet.invoke()
    raw = mobilenet.get_tensor(mobilenet.get_output_details()[0]["index"])
    scores = common.output_tensor(mobilenet, 0)
    assert raw.dtype == np.uint8 and scores.dtype == np.float32 and scores.shape == (1, 1001)
    assert np.allclose(scores, raw.astype(np.float32) / 256)
    assert 0.85 < scores.sum() < 1.05   # a dequantized softmax sums to about 1 (small ones round to 0)
    # A copy: the next invoke must not change results already read.
    common.set_input(mobilenet, np.zeros_like(pixels))
    mobilenet.invoke()
    assert np.allclose(scores, raw.astype(np.float32) / 256)


def test_dequantize_leaves_unquantized_values_alone():
    ids = np.array([3, 0, 15], dtype=np.int64)
    assert common.dequantize(ids, 0.0, 0) is ids
    values = np.array([0, 255], dtype=np.uint8)
    assert common.dequantize(values, 0.5, 255).tolist() == [-127.5, 0.0]  # no uint8 wrap-around


def test_set_input_accepts_pil_images(coral):
    lstm = open_interpreter(coral("keras_lstm_mnist_ptq.tflite"))
    nine = images.load_image(coral("mnist_nine.bmp"), "L")
    common.set_input(lstm, nine)
    assert np.array_equal(common.input_tensor(lstm), np.asarray(nine))
    with pytest.raises(ValueError):
        common.set_input(lstm, Image.new("L", (14, 14)))

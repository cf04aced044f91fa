"""The model writer: the colour classifier is a real uint8 model that LiteRT runs, edgekit reads and
predicts fully on the Edge TPU, and it names the dominant colour of plain and mixed pictures."""

import itertools

import numpy as np
import pytest
from ai_edge_litert.interpreter import Interpreter

from edgekit.compiler import check, rules
from edgekit.files import write_atomic
from edgekit.tflite import builder
from edgekit.tflite.model import read_model

COLOURS = {"red": (255, 0, 0), "green": (0, 255, 0), "blue": (0, 0, 255), "yellow": (255, 255, 0),
           "white": (255, 255, 255), "black": (0, 0, 0)}
SIZE = 96


@pytest.fixture(scope="module")
def model_bytes():
    return builder.colour_classifier(SIZE)


@pytest.fixture(scope="module")
def interpreter(model_bytes):
    interpreter = Interpreter(model_content=model_bytes)
    interpreter.allocate_tensors()
    return interpreter


def classify(interpreter, pixels):
    """Dequantized probabilities for a uint8 [H, W, 3] picture fed as raw pixels."""
    detail = interpreter.get_input_details()[0]
    interpreter.set_tensor(detail["index"], np.asarray(pixels, np.uint8)[None])
    interpreter.invoke()
    out = interpreter.get_output_details()[0]
    scale, zero = out["quantization"]
    return (interpreter.get_tensor(out["index"])[0].astype(np.float64) - zero) * scale


def solid(colour, size=SIZE):
    return np.tile(np.array(colour, np.uint8), (size, size, 1))


def test_covers_every_label():
    assert set(builder.COLOUR_LABELS) == set(COLOURS)


def test_litert_sees_a_raw_pixel_classifier(interpreter):
    (inp,) = interpreter.get_input_details()
    (out,) = interpreter.get_output_details()
    assert inp["dtype"] == np.uint8 and list(inp["shape"]) == [1, SIZE, SIZE, 3]
    assert inp["quantization"] == (1 / 128, 128)
    assert out["dtype"] == np.uint8 and list(out["shape"]) == [1, len(builder.COLOUR_LABELS)]
    assert out["quantization"] == (1 / 256, 0)


def test_reader_sees_the_exact_graph(model_bytes):
    model = read_model(model_bytes, name="colours.tflite")
    assert [(op.name, op.version) for op in model.operators()] == [
        ("AVERAGE_POOL_2D", 1), ("RESHAPE", 1), ("FULLY_CONNECTED", 1), ("SOFTMAX", 1)]
    assert not model.is_edgetpu_compiled
    assert model.metadata["min_runtime_version"] == b"1.5.0".ljust(16, b"\0")

    graph = model.main
    pool, reshape, dense, softmax = graph.operators
    assert pool.options["filter_width"] == pool.options["filter_height"] == SIZE
    assert pool.options["fused_activation_function"] == 0
    (image,) = model.input_tensors()
    (probabilities,) = model.output_tensors()
    assert image.type == "UINT8" and image.shape == (1, SIZE, SIZE, 3)
    assert image.quantization.per_tensor == (1 / 128, 128)
    assert probabilities.type == "UINT8" and probabilities.quantization.per_tensor == (1 / 256, 0)
    # Averaging and reshaping keep the pixels' quantization, as LiteRT requires of quantized pooling.
    for t in (pool.outputs[0], reshape.outputs[0]):
        assert graph.tensors[t].quantization.per_tensor == (1 / 128, 128)

    flat, weights, bias = (graph.tensors[i] for i in dense.inputs)
    assert weights.type == "UINT8" and weights.is_constant and weights.shape == (len(COLOURS), 3)
    assert weights.quantization.scale.size == 1          # per-tensor
    assert bias.type == "INT32" and bias.is_constant
    w_scale, _ = weights.quantization.per_tensor
    b_scale, b_zero = bias.quantization.per_tensor
    assert b_zero == 0 and b_scale == pytest.approx(w_scale / 128, rel=1e-6)
    for t in graph.tensors:
        assert t.type in ("UINT8", "INT32") and t.is_quantized or t.name == "flat_shape"


def test_predicted_fully_on_the_edge_tpu(tmp_path, model_bytes):
    path = write_atomic(tmp_path / "colours.tflite", model_bytes)
    summary = check.summary(check.check_file(path))
    assert (summary["ops"], summary["tpu"], summary["cpu"]) == (4, 4, 0)
    for op in read_model(path).operators():
        assert op.version <= rules.max_version(op.name)


@pytest.mark.parametrize("name", list(COLOURS))
def test_plain_pictures(interpreter, name):
    scores = classify(interpreter, solid(COLOURS[name]))
    assert builder.COLOUR_LABELS[int(np.argmax(scores))] == name
    assert scores[builder.COLOUR_LABELS.index(name)] > 0.9


@pytest.mark.parametrize("major,minor", list(itertools.permutations(COLOURS, 2)))
def test_mixed_pictures(interpreter, major, minor):
    """Two thirds one colour, in a block, stripes or a scatter: that colour wins with more than half."""
    rng = np.random.default_rng(0)
    block = solid(COLOURS[minor])
    block[: SIZE * 2 // 3] = COLOURS[major]
    stripes = solid(COLOURS[minor])
    stripes[:, np.arange(SIZE) % 3 != 0] = COLOURS[major]
    scatter = np.where((rng.random((SIZE, SIZE)) < 2 / 3)[..., None], np.array(COLOURS[major]),
                       np.array(COLOURS[minor])).astype(np.uint8)
    for picture in (block, stripes, scatter):
        scores = classify(interpreter, picture)
        assert scores[builder.COLOUR_LABELS.index(major)] > 0.5, (major, minor, scores)


@pytest.mark.parametrize("name,pixels", [
    # Shades a camera gives rather than the cube's corners, with noise.
    ("red", (200, 40, 35)), ("green", (60, 160, 50)), ("blue", (40, 90, 200)), ("yellow", (230, 210, 40)),
    ("white", (235, 230, 225)), ("black", (25, 20, 30)),
])
def test_natural_shades(interpreter, name, pixels):
    rng = np.random.default_rng(1)
    picture = np.clip(solid(pixels).astype(int) + rng.integers(-25, 26, (SIZE, SIZE, 3)), 0, 255)
    scores = classify(interpreter, picture)
    assert scores[builder.COLOUR_LABELS.index(name)] > 0.5, scores


def test_red_fruit_on_a_white_plate(interpreter):
    """A mean that is pink, not red: the case a nearest-corner rule gets wrong."""
    y, x = np.mgrid[0:SIZE, 0:SIZE]
    fruit = (x - SIZE / 2) ** 2 + (y - SIZE / 2) ** 2 < (0.42 * SIZE) ** 2
    picture = np.where(fruit[..., None], np.array([215, 40, 30]), np.array([240, 235, 225]))
    scores = classify(interpreter, picture)
    assert builder.COLOUR_LABELS[int(np.argmax(scores))] == "red" and scores[0] > 0.5


@pytest.mark.parametrize("size", [1, 7, 224])
def test_other_sizes(size):
    interpreter = Interpreter(model_content=builder.colour_classifier(size))
    interpreter.allocate_tensors()
    assert list(interpreter.get_input_details()[0]["shape"]) == [1, size, size, 3]
    scores = classify(interpreter, solid(COLOURS["blue"], size))
    assert builder.COLOUR_LABELS[int(np.argmax(scores))] == "blue"


def test_size_must_be_positive():
    with pytest.raises(ValueError):
        builder.colour_classifier(0)


def test_through_edgekit_run(tmp_path):
    """The runtime's own pipeline (PNG decode, resize, normalisation rule) gets the same answers."""
    from PIL import Image

    from edgekit.runtime.interpreter import open_model
    from edgekit.runtime.pipeline import Runner

    path = write_atomic(tmp_path / "colours.tflite", builder.colour_classifier())
    runner = Runner(open_model(path, device="cpu"), labels=dict(enumerate(builder.COLOUR_LABELS)), top_k=1)
    for name, colour in COLOURS.items():
        image = tmp_path / f"{name}.png"
        Image.fromarray(solid(colour, 50)).save(image)
        (best,) = runner.run_image(image).classes
        assert runner.label(best.id) == name and best.score > 0.9


def test_importing_the_reader_leaves_the_schema_module_out():
    """`import edgekit.tflite` stays light: the generated schema is imported only to write a model."""
    import subprocess
    import sys

    code = ("import sys, edgekit.tflite, edgekit.tflite.builder; "
            "print('ai_edge_litert.schema_py_generated' in sys.modules, 'flatbuffers' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.split() == ["False", "False"]

"""Exportable by construction: lite0 of each family converts to a float TFLite model with a static
[1, H, W, 3] input and only builtins the Edge TPU maps, and the TFLite model computes what Keras does.

Converted the way edgekit's converter does (a Keras ExportArchive endpoint with a fixed batch-1 signature,
then TFLiteConverter.from_saved_model); the ops are read back with edgekit's own TFLite reader.
"""

import numpy as np
import pytest

from edgekit.tflite.model import read_model

keras = pytest.importorskip("keras")
tf = pytest.importorskip("tensorflow")

# Ops an Edge-TPU-friendly Lite model may contain (float here; each has an int8 Edge TPU kernel).
# STRIDED_SLICE only as the unit-stride crop after an upscale to an odd size (checked below).
FRIENDLY = {"CONV_2D", "DEPTHWISE_CONV_2D", "ADD", "MUL", "AVERAGE_POOL_2D", "MAX_POOL_2D", "FULLY_CONNECTED",
            "SOFTMAX", "RESHAPE", "CONCATENATION", "RESIZE_NEAREST_NEIGHBOR", "STRIDED_SLICE"}
# What a careless build leaves: swish variants, dynamic-batch shape arithmetic, global pooling as MEAN,
# UpSampling2D as TILE, and TensorFlow fallbacks.
UNFRIENDLY = {"HARD_SWISH", "LOGISTIC", "SHAPE", "PACK", "MEAN", "TILE", "GATHER", "FLEX", "CUSTOM"}


def to_float_tflite(model, folder):
    archive = keras.export.ExportArchive()
    archive.track(model)
    archive.add_endpoint(name="serving_default", fn=lambda images: model(images, training=False),
                         input_signature=[tf.TensorSpec([1, *model.input_shape[1:]], tf.float32, name="images")])
    archive.write_out(str(folder), verbose=False)
    return tf.lite.TFLiteConverter.from_saved_model(str(folder)).convert()


def check_resampling(tflite):
    """Upscales by whole numbers only (the Edge TPU leaves 3x3 -> 5x5 on the CPU); slices only crop them."""
    graph = tflite.main
    producers = graph.producers()
    for op in graph.operators:
        if op.name == "RESIZE_NEAREST_NEIGHBOR":
            (src_h, src_w), (dst_h, dst_w) = (graph.tensors[op.inputs[0]].shape[1:3],
                                              graph.tensors[op.outputs[0]].shape[1:3])
            assert dst_h % src_h == 0 and dst_w % src_w == 0, f"{src_h}x{src_w} -> {dst_h}x{dst_w}"
        if op.name == "STRIDED_SLICE":
            assert graph.operators[producers[op.inputs[0]]].name == "RESIZE_NEAREST_NEIGHBOR"
            assert (graph.tensors[op.inputs[3]].numpy() == 1).all(), "unit strides"


def run_tflite(data, pixels):
    from ai_edge_litert.interpreter import Interpreter

    interpreter = Interpreter(model_content=data)
    interpreter.allocate_tensors()
    interpreter.set_tensor(interpreter.get_input_details()[0]["index"], pixels)
    interpreter.invoke()
    return [interpreter.get_tensor(d["index"]) for d in interpreter.get_output_details()]


@pytest.mark.slow
@pytest.mark.parametrize("name", ["efficientnet-lite0", "efficientdet-lite0"])
def test_lite0_converts_to_an_edge_tpu_friendly_float_tflite(zoo_models, name, tmp_path):
    model = zoo_models(name)
    data = to_float_tflite(model, tmp_path / "saved_model")
    tflite = read_model(data)
    ops = {op.name for op in tflite.operators()}
    assert ops <= FRIENDLY, f"unexpected ops {sorted(ops - FRIENDLY)}"
    assert not ops & UNFRIENDLY
    assert "AVERAGE_POOL_2D" in ops if name.startswith("efficientnet") else "RESIZE_NEAREST_NEIGHBOR" in ops
    (image,) = tflite.input_tensors()
    assert tuple(image.shape) == tuple(model.input_shape) and image.shape[0] == 1
    assert not any(tensor.is_dynamic for tensor in tflite.main.tensors), "every shape static"
    check_resampling(tflite)

    # Raw pixels in, same answers out: the normalisation travelled into the TFLite model.
    pixels = np.random.default_rng(0).integers(0, 256, model.input_shape).astype(np.float32)
    expected = model.predict(pixels, verbose=0)
    expected = expected if isinstance(expected, list) else [expected]
    for output in run_tflite(data, pixels):
        reference = next(e for e in expected if e.shape == output.shape)
        np.testing.assert_allclose(output, reference, atol=1e-4)

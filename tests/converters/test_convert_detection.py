"""Detection export with TFLite_Detection_PostProcess: a small two-head detector converted and run through
`edgekit run`; EfficientDet-Lite0 from the zoo when the zoo has it."""

import numpy as np
import pytest
from cli_runner import run_json
from photos import write_photos

from edgekit.tflite.metadata import read_edgekit_metadata
from edgekit.tflite.model import read_model

keras = pytest.importorskip("keras")

SIZE, GRID, CLASSES = 64, 16, 3


def grid_anchors(grid=GRID, size=0.25):
    yc, xc = np.meshgrid((np.arange(grid) + 0.5) / grid, (np.arange(grid) + 0.5) / grid, indexing="ij")
    return np.stack([yc.ravel(), xc.ravel(), np.full(grid * grid, size), np.full(grid * grid, size)], 1)


def small_detector():
    keras.utils.set_random_seed(0)
    images = keras.Input((SIZE, SIZE, 3), batch_size=1)
    x = keras.layers.Conv2D(8, 3, strides=4, padding="same", activation="relu6")(images)
    x = keras.layers.Conv2D(16, 3, padding="same", activation="relu6")(x)
    boxes = keras.layers.Reshape((GRID * GRID, 4))(keras.layers.Conv2D(4, 1)(x))
    classes = keras.layers.Reshape((GRID * GRID, CLASSES))(keras.layers.Conv2D(CLASSES, 1)(x))
    model = keras.Model(images, [boxes, classes])
    model.edgekit_anchors = grid_anchors().astype(np.float32)
    model.edgekit_num_classes = CLASSES
    return model


@pytest.fixture(scope="module")
def pictures(tmp_path_factory):
    return write_photos(tmp_path_factory.mktemp("det_pictures"), ("astronaut", "coffee", "chelsea", "rocket"))


@pytest.fixture(scope="module")
def detector(pictures, tmp_path_factory):
    from edgekit.converters.api import convert

    return convert(small_detector(), str(pictures), tmp_path_factory.mktemp("det"), name="det", task="detection",
                   compile=False, max_detections=10)


def test_implements_signature_has_every_attribute_typed():
    from edgekit.converters.postprocess import Settings, implements_signature

    text = implements_signature(Settings(90, 25, 0.0, 0.5))
    assert text.startswith('name: "TFLite_Detection_PostProcess"')
    for piece in ('"max_detections" value { i: 25 }', '"max_classes_per_detection" value { i: 1 }',
                  '"use_regular_nms" value { b: false }', '"nms_iou_threshold" value { f: 0.5 }',
                  '"nms_score_threshold" value { f: 0 }', '"num_classes" value { i: 90 }',
                  '"y_scale" value { f: 1 }', '"w_scale" value { f: 1 }'):
        assert piece in text


def test_int8_before_postprocessing_and_float_outputs(detector):
    model = read_model(detector.int8_path)
    ops = model.main.operators
    assert ops[-1].name == "TFLite_Detection_PostProcess"
    for op in ops:
        if op.name in ("TFLite_Detection_PostProcess", "DEQUANTIZE"):
            continue
        for i in op.inputs + op.outputs:
            if i >= 0:
                t = model.main.tensors[i]
                assert t.type in ("UINT8", "INT8") or (t.type == "INT32" and t.is_constant), (op.name, t)
    assert [t.type for t in model.output_tensors()] == ["FLOAT32"] * 4
    assert model.input_tensors()[0].type == "UINT8"
    assert set(detector.check["cpu_ops"]) <= {"DEQUANTIZE", "TFLite_Detection_PostProcess"}
    assert detector.warnings == [] or all("CPU" not in w for w in detector.warnings)
    assert read_edgekit_metadata(model)["task"] == "detection"
    assert read_edgekit_metadata(model)["resize"] == "bilinear"


def test_runs_through_edgekit_run(detector, pictures):
    from ai_edge_litert.interpreter import Interpreter


    document = run_json(detector.int8_path, [str(pictures / "astronaut.png")], device="cpu", threshold=0.0)
    assert document["task"] == "detection"
    objects = document["results"][0]["objects"]
    assert 1 <= len(objects) <= 10
    assert all(0 <= o["id"] < CLASSES for o in objects)
    interpreter = Interpreter(model_path=detector.int8_path)
    interpreter.allocate_tensors()
    interpreter.invoke()
    outputs = interpreter.get_signature_runner()(images=np.zeros((1, SIZE, SIZE, 3), np.uint8))
    assert outputs["output_3"].shape == (1, 10, 4) and outputs["output_1"].shape == (1, 10)
    assert outputs["output_2"].shape == (1, 10) and outputs["output_0"].shape == (1,)
    count = int(outputs["output_0"][0])
    boxes = outputs["output_3"][0][:count]
    # Normalised (ymin, xmin, ymax, xmax): centres inside the image, extents about an anchor's size. The op
    # does not clip, so border boxes may reach a little past [0, 1]; `edgekit run` clips them to the image.
    assert count > 0 and (boxes[:, 2:] >= boxes[:, :2]).all()
    centres = (boxes[:, :2] + boxes[:, 2:]) / 2
    assert centres.min() >= 0.0 and centres.max() <= 1.0 and boxes.min() > -0.5 and boxes.max() < 1.5
    assert all(0 <= v <= 512 for o in objects for v in o["bbox"])


@pytest.mark.slow
def test_efficientdet_lite0_from_the_zoo(pictures, tmp_path):
    """The zoo's EfficientDet-Lite0 (random detection layers: no COCO weights are reachable) exports with the
    post-processing op, int8 up to the heads, and runs through `edgekit run`. About a minute on 2 cores."""
    from edgekit.converters import keras_export

    if "efficientdet-lite0" not in keras_export.zoo_names():
        pytest.skip("edgekit.models has no efficientdet-lite0 yet")
    from edgekit.converters.api import convert

    result = convert("efficientdet-lite0", str(pictures), tmp_path, num_samples=4, compile=False, report=False)
    model = read_model(result.int8_path)
    assert model.input_tensors()[0].type == "UINT8" and model.input_tensors()[0].shape == (1, 320, 320, 3)
    assert [t.type for t in model.output_tensors()] == ["FLOAT32"] * 4
    post = [op for op in model.main.operators if op.name == "TFLite_Detection_PostProcess"]
    assert len(post) == 1
    for op in model.main.operators:
        if op.name not in ("TFLite_Detection_PostProcess", "DEQUANTIZE"):
            assert all(model.main.tensors[i].type in ("UINT8", "INT8", "INT32") for i in op.inputs + op.outputs
                       if i >= 0), op.name
    anchors = model.main.tensors[post[0].inputs[2]].numpy()
    assert anchors.shape == (19206, 4)
    document = run_json(result.int8_path, [str(pictures / "astronaut.png")], device="cpu", threshold=0.0)
    objects = document["results"][0]["objects"]
    assert len(objects) <= 25
    for o in objects:
        assert 0 <= o["id"] < 90 and all(0 <= v <= 512 for v in o["bbox"])

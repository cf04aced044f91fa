"""What a detector's class count does to Edge TPU mapping: `check`'s prediction and the advice before training.

The heads are built here as real int8 models: per level a CONV_2D class head and box head, each level's
RESHAPE to [1, cells * anchors, depth], the CONCATENATION of the levels, LOGISTIC on the class scores, the
DEQUANTIZEs and TFLite_Detection_PostProcess, the tail of EfficientDet-Lite as edgekit and Model Maker export
it and of TF1's SSD detectors. LiteRT runs them. A tiny Keras detector converted by `edgekit.convert` checks
the converter's own graph the same way.
"""

import json
from collections import Counter

import numpy as np
import pytest
from cli_runner import edgekit
from detection_model import DEFAULT_OPTIONS
from flatbuffers import flexbuffers
from photos import write_photos

from edgekit.compiler import check, rules
from edgekit.errors import EdgekitError
from edgekit.tflite.graph_edit import litert_schema, pack
from edgekit.tflite.model import DETECTION_POSTPROCESS_OP, read_model

fb = litert_schema()

# EfficientDet-Lite0 at 320: P3..P7 are 40, 20, 10, 5 and 3 cells a side, 9 anchors per cell: 19,206 anchors.
LITE0_LEVELS = [(40, 9), (20, 9), (10, 9), (5, 9), (3, 9)]
# TF1's SSD MobileNet v1/v2 at 300: 19, 10, 5, 3, 2 and 1 cells a side, 3 anchors on the first, 6 after: 1,917.
SSD_LEVELS = [(19, 3), (10, 6), (5, 6), (3, 6), (2, 6), (1, 6)]
TAIL = {"DEQUANTIZE": 2, DETECTION_POSTPROCESS_OP: 1}      # on the CPU in every detector: float, and custom
FEATURES = 4


class _Head:
    """One subgraph's tensors and operators, written with LiteRT's flatbuffer schema."""

    def __init__(self):
        self.tensors, self.buffers, self.operators, self.codes = [], [fb.BufferT()], [], []

    def tensor(self, name, shape, dtype, scale=None, zero_point=0, data=None, axis=0):
        t = fb.TensorT()
        t.name, t.shape, t.type, t.buffer = name, list(shape), getattr(fb.TensorType, np.dtype(dtype).name.upper()), 0
        if scale is not None:
            t.quantization = fb.QuantizationParametersT()
            t.quantization.scale = [float(s) for s in np.atleast_1d(scale)]
            t.quantization.zeroPoint = [int(z) for z in np.broadcast_to(zero_point, np.shape(np.atleast_1d(scale)))]
            t.quantization.quantizedDimension = axis
        if data is not None:
            buffer = fb.BufferT()
            buffer.data = np.frombuffer(np.ascontiguousarray(data, dtype).tobytes(), np.uint8)
            self.buffers.append(buffer)
            t.buffer = len(self.buffers) - 1
        self.tensors.append(t)
        return len(self.tensors) - 1

    def op(self, name, inputs, outputs, version=1, options=None, custom=None):
        key = (name, version, custom is not None)
        if key not in self.codes:
            self.codes.append(key)
        op = fb.OperatorT()
        op.opcodeIndex, op.inputs, op.outputs = self.codes.index(key), list(inputs), list(outputs)
        if options is not None:
            table, values = options
            op.builtinOptionsType, op.builtinOptions = getattr(fb.BuiltinOptions, table), values
        if custom is not None:
            op.customOptions = list(flexbuffers.Dumps(custom))
            op.customOptionsFormat = fb.CustomOptionsFormat.FLEXBUFFERS
        self.operators.append(op)

    def write(self, path, inputs, outputs):
        codes = []
        for name, version, is_custom in self.codes:
            code = fb.OperatorCodeT()
            number = fb.BuiltinOperator.CUSTOM if is_custom else getattr(fb.BuiltinOperator, name)
            code.builtinCode, code.deprecatedBuiltinCode, code.version = number, min(number, 127), version
            code.customCode = name if is_custom else None
            codes.append(code)
        graph = fb.SubGraphT()
        graph.name, graph.tensors, graph.operators = "main", self.tensors, self.operators
        graph.inputs, graph.outputs = list(inputs), list(outputs)
        model = fb.ModelT()
        model.version, model.description = 3, "edgekit test detector head"
        model.operatorCodes, model.subgraphs, model.buffers = codes, [graph], self.buffers
        path.write_bytes(pack(model))
        return path


def _options(table, **fields):
    values = getattr(fb, table + "T")()
    for key, value in fields.items():
        setattr(values, key, value)
    return table, values


def detector_head(path, levels, classes, seed=0):
    """Write an int8 SSD-style head over `levels` [(cells a side, anchors per cell)] for `classes` classes."""
    rng = np.random.default_rng(seed)
    h = _Head()
    inputs, flat = [], {"class": [], "box": []}
    for level, (side, per_cell) in enumerate(levels):
        feature = h.tensor(f"feature_{level}", [1, side, side, FEATURES], np.int8, 1 / 16, 0)
        inputs.append(feature)
        for kind, depth in (("class", classes), ("box", 4)):
            channels = per_cell * depth
            weights = h.tensor(f"{kind}_weights_{level}", [channels, 1, 1, FEATURES], np.int8,
                               np.full(channels, 1 / 64), 0, rng.integers(-64, 64, (channels, 1, 1, FEATURES)))
            bias = h.tensor(f"{kind}_bias_{level}", [channels], np.int32, np.full(channels, 1 / 1024), 0,
                            np.zeros(channels))
            head = h.tensor(f"{kind}_predict_{level}", [1, side, side, channels], np.int8, 1 / 8, 0)
            h.op("CONV_2D", [feature, weights, bias], [head], 3,
                 _options("Conv2DOptions", padding=fb.Padding.SAME, strideW=1, strideH=1))
            new_shape = [1, side * side * per_cell, depth]
            shape = h.tensor(f"{kind}_shape_{level}", [3], np.int32, data=np.array(new_shape))
            reshaped = h.tensor(f"{kind}_flat_{level}", new_shape, np.int8, 1 / 8, 0)
            h.op("RESHAPE", [head, shape], [reshaped], 1, _options("ReshapeOptions", newShape=new_shape))
            flat[kind].append(reshaped)
    anchors = sum(side * side * per_cell for side, per_cell in levels)
    joined = {}
    for kind, depth in (("class", classes), ("box", 4)):
        joined[kind] = h.tensor(f"{kind}_concat", [1, anchors, depth], np.int8, 1 / 8, 0)
        h.op("CONCATENATION", flat[kind], [joined[kind]], 2, _options("ConcatenationOptions", axis=1))
    squashed = h.tensor("class_scores", [1, anchors, classes], np.int8, 1 / 256, -128)
    h.op("LOGISTIC", [joined["class"]], [squashed], 2)
    scores = h.tensor("scores_float", [1, anchors, classes], np.float32)
    boxes = h.tensor("boxes_float", [1, anchors, 4], np.float32)
    h.op("DEQUANTIZE", [squashed], [scores], 2)
    h.op("DEQUANTIZE", [joined["box"]], [boxes], 2)
    centres = rng.uniform(0.1, 0.9, (anchors, 2))
    anchor_boxes = h.tensor("anchors", [anchors, 4], np.float32,
                            data=np.concatenate([centres, np.full((anchors, 2), 0.2)], 1))
    outputs = [h.tensor(name, shape, np.float32) for name, shape in
               (("detection_boxes", [1, 5, 4]), ("detection_classes", [1, 5]), ("detection_scores", [1, 5]),
                ("num_detections", [1]))]
    h.op(DETECTION_POSTPROCESS_OP, [boxes, scores, anchor_boxes], outputs,
         custom=dict(DEFAULT_OPTIONS, num_classes=classes))
    return h.write(path, inputs, outputs)


def predicted(path):
    return check.predict(read_model(path))


def cpu_ops(prediction):
    return Counter(v.op for v in prediction.ops if v.status == "cpu")


def verdicts_of(prediction, op_name):
    return [v for v in prediction.ops if v.op == op_name]


@pytest.fixture(scope="module")
def lite0_heads(tmp_path_factory):
    """EfficientDet-Lite0's head (19,206 anchors) at 5 (Model Maker's salads), 20, 21 and 90 (COCO) classes."""
    folder = tmp_path_factory.mktemp("heads")
    return {classes: detector_head(folder / f"lite0_{classes}.tflite", LITE0_LEVELS, classes)
            for classes in (5, 20, 21, 90)}


def test_the_heads_are_real_models_that_litert_runs(lite0_heads):
    from ai_edge_litert.interpreter import Interpreter

    interpreter = Interpreter(model_path=str(lite0_heads[21]))
    interpreter.allocate_tensors()
    rng = np.random.default_rng(1)
    for detail in interpreter.get_input_details():
        interpreter.set_tensor(detail["index"], rng.integers(-128, 128, detail["shape"]).astype(np.int8))
    interpreter.invoke()
    by_name = {d["name"]: interpreter.get_tensor(d["index"]) for d in interpreter.get_output_details()}
    count = int(by_name["num_detections"][0])
    assert 1 <= count <= 5
    assert ((0 <= by_name["detection_classes"][0, :count]) & (by_name["detection_classes"][0, :count] < 21)).all()
    assert read_model(lite0_heads[21]).main.tensors[0].shape == (1, 40, 40, FEATURES)


def test_model_makers_five_class_lite0_maps_like_its_compiler_log(lite0_heads):
    # google-coral/edgetpu#560 (a Model Maker EfficientDet-Lite0 compiled by compiler 16): LOGISTIC mapped, the
    # two DEQUANTIZEs and the post-processing on the CPU; #587 (Coral's salads tutorial, 5 classes): 3 CPU ops.
    prediction = predicted(lite0_heads[5])
    assert cpu_ops(prediction) == TAIL
    assert prediction.class_scores == check.ClassScores("scores_float", 5, 19206, 5 * 19206, 20, [])


def test_twenty_classes_map_and_twenty_one_leave_the_class_scores_on_the_cpu(lite0_heads):
    # Coral's EfficientDet-Lite tutorial: more than 20 classes leave a layer off the Edge TPU.
    twenty, twenty_one = predicted(lite0_heads[20]), predicted(lite0_heads[21])
    assert cpu_ops(twenty) == TAIL and twenty.cut.op == "DEQUANTIZE" and twenty.class_scores.cpu_ops == []
    assert not any("classes" in fix for fix in twenty.fixes)

    assert cpu_ops(twenty_one) == {"CONCATENATION": 1, "LOGISTIC": 1, **TAIL}
    concat, logistic = verdicts_of(twenty_one, "CONCATENATION")[0], verdicts_of(twenty_one, "LOGISTIC")[0]
    assert twenty_one.cut == concat and concat.reason == logistic.reason == rules.UNSPECIFIED
    assert concat.detail == ("21 classes x 19,206 anchors: tensor 'class_concat' [1, 19206, 21] holds 403,326 "
                             "values in one row, more than the 384,120 the Edge TPU maps (at most 20 classes fit at "
                             "this input size)")
    assert logistic.detail.startswith("21 classes x 19,206 anchors: tensor 'class_concat' [1, 19206, 21]")
    assert twenty_one.class_scores.cpu_ops == [concat.index, logistic.index]
    # The box path beside it still maps: only the class count costs anything.
    assert all(v.status == "tpu" for v in twenty_one.ops if v.op in ("CONV_2D", "RESHAPE"))
    assert verdicts_of(twenty_one, "CONCATENATION")[1].status == "tpu"
    assert twenty_one.fixes[0] == (
        f"the detector's 21 classes over 19,206 anchors make its class scores 'scores_float' too large for the "
        f"Edge TPU (403,326 values in one row, at most 384,120 map), so ops {concat.index} CONCATENATION, "
        f"{logistic.index} LOGISTIC run on the CPU: train fewer classes (at most 20 classes fit at this input "
        "size), or accept these ops on the CPU (Coral's EfficientDet-Lite tutorial: more than 20 classes "
        "leave a layer off the Edge TPU)")


def test_coco_classes_on_lite0_also_leave_the_largest_level_off(lite0_heads):
    prediction = predicted(lite0_heads[90])
    # P3's [1, 14400, 90] is too large already; P4's [1, 3600, 90] is not.
    assert cpu_ops(prediction) == {"RESHAPE": 1, "CONCATENATION": 1, "LOGISTIC": 1, **TAIL}
    assert prediction.cut.op == "RESHAPE" and "[1, 14400, 90]" in prediction.cut.detail
    assert prediction.cut.detail.startswith("90 classes x 19,206 anchors: ")
    assert len(prediction.class_scores.cpu_ops) == 3 and prediction.class_scores.most_classes == 20


def test_ssd_mobilenet_scores_map_as_in_corals_compiled_detectors(tmp_path):
    # google-coral/test_data's pipeline/ssd_mobilenet_v{1,2}_coco_quant_postprocess segments (compiler
    # output): the Edge TPU part itself writes the [1, 1917, 91] "convert_scores", the LOGISTIC's output.
    prediction = predicted(detector_head(tmp_path / "ssd.tflite", SSD_LEVELS, 91))
    assert cpu_ops(prediction) == TAIL
    assert prediction.class_scores.anchors == 1917 and prediction.class_scores.most_classes == 200


def test_a_model_without_post_processing_has_no_class_scores(coral):
    prediction = check.predict(read_model(coral("mobilenet_v1_0.25_128_quant.tflite")))
    assert prediction.class_scores is None and check.summary(prediction)["class_scores"] is None


def test_edgekit_check_says_which_ops_and_why(lite0_heads):
    result = edgekit("check", lite0_heads[21])
    assert result.exit_code == 0, result.output
    assert "cut: op " in result.output and "CONCATENATION (v2) runs on the CPU: 21 classes x 19,206 anchors" \
        in result.output
    assert "train fewer classes (at most 20 classes fit at this input size)" in result.output
    document = json.loads(edgekit("check", lite0_heads[21], "--json").stdout)
    scores = document["summary"]["class_scores"]
    assert (scores["classes"], scores["anchors"], scores["most_classes"]) == (21, 19206, 20)
    assert [document["ops"][i]["op"] for i in scores["cpu_ops"]] == ["CONCATENATION", "LOGISTIC"]
    assert edgekit("check", lite0_heads[20], "--strict").exit_code == 1        # the tail is on the CPU anyway


def lite_anchors(size):
    """EfficientDet-Lite's anchor count at `size` pixels, from the zoo's own level sizes."""
    from edgekit.models.efficientdet_lite import anchors, presets

    return sum(h * w for h, w in anchors.feature_sizes(size)) * presets.ANCHORS_PER_LOCATION


@pytest.mark.parametrize("size, most", [(320, 20), (384, 13), (448, 10), (512, 7), (640, 5)])
def test_advice_before_training_follows_the_input_size(size, most):
    anchors = lite_anchors(size)
    assert check.class_count_advice(most, anchors) is None
    advice = check.class_count_advice(most + 1, anchors, f"efficientdet at {size}")
    assert advice.startswith(f"{most + 1} classes on efficientdet at {size} ({anchors:,} anchors) make class scores")
    assert f"train fewer classes (at most {most} classes fit at this input size)" in advice
    assert "\n" not in advice


def test_advice_agrees_with_check_on_the_exported_head(lite0_heads):
    for classes in (5, 20, 21, 90):
        advice = check.class_count_advice(classes, lite_anchors(320))
        assert (advice is None) == (predicted(lite0_heads[classes]).class_scores.cpu_ops == [])


def test_advice_when_no_class_count_fits():
    advice = check.class_count_advice(1, rules.ROW_MAX_VALUES + 1, "a huge detector")
    assert "use a smaller input size, which has fewer anchors (no class count fits this many)" in advice
    assert check.class_count_advice(np.int64(20), np.int64(19206)) is None        # counts straight from numpy


@pytest.mark.parametrize("classes, anchors", [(0, 19206), (3, 0), (2.5, 19206), (True, 19206)])
def test_advice_refuses_nonsense_counts(classes, anchors):
    with pytest.raises(EdgekitError, match="must be a whole number of at least 1"):
        check.class_count_advice(classes, anchors)


# --- the converter's own graph: a tiny two-level Keras detector through edgekit.convert -----------------------

GRIDS, PER_CELL, SIZE = (16, 8), 9, 64
CONVERTED_ANCHORS = sum(g * g for g in GRIDS) * PER_CELL


def tiny_detector(classes):
    """Two levels of class and box heads, flattened and concatenated inside the model as the zoo's detector
    does; edgekit.convert adds the LOGISTIC, the DEQUANTIZEs and TFLite_Detection_PostProcess."""
    keras = pytest.importorskip("keras")
    keras.utils.set_random_seed(0)
    images = keras.Input((SIZE, SIZE, 3), batch_size=1)
    x = keras.layers.Conv2D(8, 3, strides=4, padding="same", activation="relu6")(images)
    levels = [x, keras.layers.Conv2D(8, 3, strides=2, padding="same", activation="relu6")(x)]
    class_maps = [keras.layers.Conv2D(PER_CELL * classes, 1)(level) for level in levels]
    box_maps = [keras.layers.Conv2D(PER_CELL * 4, 1)(level) for level in levels]
    flat_classes = keras.layers.Concatenate(axis=1)([keras.layers.Reshape((-1, classes))(m) for m in class_maps])
    flat_boxes = keras.layers.Concatenate(axis=1)([keras.layers.Reshape((-1, 4))(m) for m in box_maps])
    model = keras.Model(images, [flat_boxes, flat_classes])
    rng = np.random.default_rng(0)
    model.edgekit_anchors = np.concatenate([rng.uniform(0.1, 0.9, (CONVERTED_ANCHORS, 2)),
                                            np.full((CONVERTED_ANCHORS, 2), 0.2)], 1).astype(np.float32)
    model.edgekit_num_classes = classes
    return model


@pytest.fixture(scope="module")
def pictures(tmp_path_factory):
    return write_photos(tmp_path_factory.mktemp("pictures"), ("astronaut", "coffee", "chelsea"))


@pytest.mark.parametrize("extra", [0, 1])
def test_converted_detector_at_and_past_the_limit(pictures, tmp_path, extra):
    from edgekit.converters.api import convert

    most = rules.most_classes(CONVERTED_ANCHORS)
    result = convert(tiny_detector(most + extra), str(pictures), tmp_path, name="tiny", task="detection",
                     compile=False, report=False, num_samples=3)
    prediction = predicted(result.int8_path)
    scores = prediction.class_scores
    assert (scores.classes, scores.anchors, scores.most_classes) == (most + extra, CONVERTED_ANCHORS, most)
    if extra:
        assert [prediction.ops[i].op for i in scores.cpu_ops] == ["CONCATENATION", "LOGISTIC"]
        assert result.check["class_scores"]["cpu_ops"] == scores.cpu_ops
        assert any(f"{most + 1} classes x {CONVERTED_ANCHORS:,} anchors" in w for w in result.warnings)
    else:
        assert scores.cpu_ops == [] and cpu_ops(prediction) == TAIL

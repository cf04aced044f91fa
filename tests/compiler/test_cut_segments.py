"""Segments for pipelining: every Coral CPU model, an EfficientNet-Lite classifier and an EfficientDet-Lite detector
made by `edgekit convert`, cut into 2 and 3 segments (by parameter bytes, and by CPU latency for one), chained
through ai_edge_litert by tensor name, give the whole model's outputs bit for bit on Coral's pictures; control flow
(WHILE subgraphs), LSTM state and resource variables stay whole; the parameter split balances bytes; the choosers
follow their documented methods; `edgekit segment` and `edgekit compile --partition profile` write what they say
and refuse bad input in one exact line."""

import itertools
import json
import os
from pathlib import Path

import numpy as np
import pytest
from cli_runner import edgekit
from photos import write_photos
from testdata import CORAL, coral_file

from edgekit.compiler import compiler, partition
from edgekit.tflite import segments
from edgekit.tflite.graph_edit import GraphEditor, litert_schema, unpack
from edgekit.tflite.metadata import read_edgekit_metadata
from edgekit.tflite.model import DETECTION_POSTPROCESS_OP, read_model

STANDIN = Path(__file__).parent / "standin"
fb = litert_schema()

# Every CPU model of Coral's test data, with the picture it is fed (the peers' own test pictures).
CORAL_CPU_MODELS = {
    "mobilenet_v1_0.25_128_quant.tflite": "cat.bmp",
    "mobilenet_v1_0.5_160_quant.tflite": "cat.bmp",
    "mobilenet_v2_1.0_224_quant.tflite": "cat.bmp",
    "mobilenet_v1_1.0_224_quant_embedding_extractor.tflite": "cat.bmp",
    "deeplabv3_mnv2_dm05_pascal_quant.tflite": "bird_segmentation.bmp",
    "keras_lstm_mnist_ptq.tflite": "mnist_nine.bmp",
    "tools/split_concat.tflite": "parrot.jpg",
}


# --- running models --------------------------------------------------------------------------------------------


def interpreter(model):
    from ai_edge_litert.interpreter import Interpreter

    source = {"model_content": model} if isinstance(model, bytes) else {"model_path": str(model)}
    loaded = Interpreter(**source, num_threads=1)
    loaded.allocate_tensors()
    return loaded


def picture_inputs(model, picture):
    """Each uint8 input of `model` cut from a real picture: [1, H, W, C] resized to W x H with TFLite's bilinear
    resize (RGB for 3 channels, its first channels for 2, grey for 1), [1, H, W] grey."""
    from edgekit.runtime import images

    feeds = {}
    for detail in interpreter(model).get_input_details():
        shape = tuple(detail["shape"])
        channels = shape[3] if len(shape) == 4 else 1
        pixels = np.asarray(images.resize(images.load_image(picture, "RGB" if channels > 1 else "L"),
                                          (shape[2], shape[1])))
        pixels = pixels.reshape(shape[1], shape[2], -1)[..., :channels]
        feeds[detail["name"]] = pixels.reshape(shape).astype(detail["dtype"])
    return feeds


def run(model, values):
    """The outputs of one invoke by tensor name, fed from `values` by tensor name."""
    loaded = interpreter(model)
    for detail in loaded.get_input_details():
        loaded.set_tensor(detail["index"], values[detail["name"]])
    loaded.invoke()
    return {d["name"]: loaded.get_tensor(d["index"]).copy() for d in loaded.get_output_details()}


def chained(models, feeds):
    """Every tensor the segments hand on, by name, after running them one after the other."""
    values = dict(feeds)
    for model in models:
        values.update(run(model, values))
    return values


def assert_same_outputs(whole, models, feeds):
    expected = run(whole, feeds)
    got = chained(models, feeds)
    for name, value in expected.items():
        assert got[name].dtype == value.dtype and np.array_equal(got[name], value), name
    return expected


# --- what the segments hold ----------------------------------------------------------------------------------


def builtin_constants(model, ops=None):
    """{buffer index: bytes} of the constants that builtin operators (`ops`, default all) of subgraph 0 read."""
    graph = model.main
    found = {}
    for op in graph.operators if ops is None else [graph.operators[i] for i in ops]:
        if not op.is_custom:
            for t in op.inputs:
                if t >= 0 and graph.tensors[t].is_constant:
                    found[graph.tensors[t].buffer] = len(graph.tensors[t].data)
    return found


def check_parameter_split(path, result):
    """The bytes each segment file holds are the ones reported; they add up to the whole model's, plus each
    constant that several segments read once more for each further segment; and the largest segment holds at
    most its share of the whole plus the largest operator's constants. Returns the largest segment against
    its share."""
    whole = read_model(path)
    total = sum(builtin_constants(whole).values())
    assert result.total_parameter_bytes == total
    for plan, file in zip(result.segments, result.files):
        assert sum(builtin_constants(read_model(file)).values()) == plan.parameter_bytes
    readers = {}
    for plan in result.segments:
        for buffer in builtin_constants(whole, range(plan.start, plan.end)):
            readers[buffer] = readers.get(buffer, 0) + 1
    sizes = builtin_constants(whole)
    assert sum(result.parameter_bytes) == total + sum((n - 1) * sizes[b] for b, n in readers.items())
    largest_op = max(sum(builtin_constants(whole, [i]).values()) for i in range(len(whole.main.operators)))
    share = total / len(result.files)
    assert max(result.parameter_bytes) <= share + largest_op
    return max(result.parameter_bytes) / share if total else 1.0


# --- every Coral CPU model ---------------------------------------------------------------------------------


def test_the_list_holds_every_coral_cpu_model():
    coral_file("cat.bmp")
    found = {str(p.relative_to(CORAL)) for p in CORAL.rglob("*.tflite")
             if not p.stem.endswith("_edgetpu") and "invalid_models" not in p.parts}
    assert found == set(CORAL_CPU_MODELS)


@pytest.mark.parametrize("name", sorted(CORAL_CPU_MODELS))
def test_coral_model_in_2_and_3_segments_gives_the_whole_models_outputs(name, tmp_path, record_property):
    path = coral_file(name)
    feeds = picture_inputs(path, coral_file(CORAL_CPU_MODELS[name]))
    balance = []
    for count in (2, 3):
        result = partition.segment_model(path, count, tmp_path / str(count))
        stem = Path(name).stem
        assert [Path(f).name for f in result.files] == segments.segment_names(stem, count)
        assert [os.path.dirname(f) for f in result.files] == [str(tmp_path / str(count))] * count
        assert_same_outputs(path, result.files, feeds)
        balance.append(f"{count}: {'/'.join(str(b) for b in result.parameter_bytes)} bytes "
                       f"(largest {check_parameter_split(path, result):.2f}x its share)")
    record_property("parameter_split", "; ".join(balance))


def test_latency_split_matches_the_whole_model(coral, tmp_path, record_property):
    path = coral("mobilenet_v1_0.25_128_quant.tflite")
    result = partition.segment_model(path, 2, tmp_path, by="latency", repeats=5)
    assert result.by == "latency" and len(result.latency_ms) == 2 and all(ms > 0 for ms in result.latency_ms)
    assert result.measured >= 2
    assert_same_outputs(path, result.files, picture_inputs(path, coral("cat.bmp")))
    record_property("latency_split", f"cut at {result.cuts}, {result.latency_ms} ms, "
                                     f"{result.measured} candidates timed")


def test_lstm_state_stays_in_its_segment(coral):
    data = coral("keras_lstm_mnist_ptq.tflite").read_bytes()
    cutter = segments.ModelCutter(data)
    variables = {cutter.tensor_name(t) for t, tensor in enumerate(cutter.graph.tensors) if tensor.isVariable}
    assert len(variables) == 2
    parts = segments.split_model(data, [1, 2])
    for part in parts:
        graph = unpack(part).subgraphs[0]
        handed = {graph.tensors[t].name.decode() for t in list(graph.inputs) + list(graph.outputs)}
        assert not handed & variables
    lstm = unpack(parts[1]).subgraphs[0]
    assert {t.name.decode() for t in lstm.tensors if t.isVariable} == variables


# --- models made by edgekit convert -----------------------------------------------------------------------------


@pytest.fixture(scope="module")
def photos(tmp_path_factory):
    return write_photos(tmp_path_factory.mktemp("segment_photos"), ("astronaut", "coffee", "chelsea", "rocket"))


@pytest.fixture(scope="module")
def lite_classifier(photos, tmp_path_factory):
    """EfficientNet-Lite0 at 64 pixels, 10 classes, as `edgekit convert` writes it (random weights: the outputs
    only have to match)."""
    pytest.importorskip("keras")
    from edgekit import models
    from edgekit.converters.api import convert

    keras_model = models.create("efficientnet-lite0", input_size=64, num_classes=10)
    return Path(convert(keras_model, str(photos), tmp_path_factory.mktemp("lite0"), name="lite0_64",
                        compile=False, report=False, num_samples=4).int8_path)


@pytest.fixture(scope="module")
def lite_detector(photos, tmp_path_factory):
    """EfficientDet-Lite0 at 128 pixels (the smallest its five feature levels allow), 3 classes, with
    TFLite_Detection_PostProcess, as `edgekit convert` writes it."""
    pytest.importorskip("keras")
    from edgekit import models
    from edgekit.converters.api import convert

    keras_model = models.create("efficientdet-lite0", input_size=128, num_classes=3)
    return Path(convert(keras_model, str(photos), tmp_path_factory.mktemp("det0"), name="det0_128", task="detection",
                        compile=False, report=False, num_samples=4, max_detections=10).int8_path)


def test_efficientnet_lite_segments_match_and_carry_the_metadata(lite_classifier, tmp_path, coral,
                                                                  record_property):
    feeds = picture_inputs(lite_classifier, coral("cat.bmp"))
    whole = read_model(lite_classifier)
    digest = segments.model_digest(lite_classifier.read_bytes())
    figures = []
    for count in (2, 3):
        result = partition.segment_model(lite_classifier, count, tmp_path / str(count))
        assert_same_outputs(lite_classifier, result.files, feeds)
        figures.append(f"{count}: {check_parameter_split(lite_classifier, result):.2f}x")
        for k, file in enumerate(result.files):
            metadata = read_edgekit_metadata(read_model(file))
            segment = {"index": k, "count": count, "model": digest, "name": "lite0_64_int8.tflite"}
            assert metadata == dict(read_edgekit_metadata(whole), segment=segment)
    assert read_edgekit_metadata(whole)["task"] == "classification"
    record_property("lite0_largest_segment_against_its_share", ", ".join(figures))


def test_efficientdet_lite_segments_match_with_postprocessing_last(lite_detector, tmp_path, coral,
                                                                   record_property):
    feeds = picture_inputs(lite_detector, coral("cat.bmp"))
    figures = []
    for count in (2, 3):
        result = partition.segment_model(lite_detector, count, tmp_path / str(count))
        expected = assert_same_outputs(lite_detector, result.files, feeds)
        assert len(expected) == 4
        has_postprocessing = [any(op.name == DETECTION_POSTPROCESS_OP for op in read_model(f).main.operators)
                              for f in result.files]
        assert has_postprocessing == [False] * (count - 1) + [True]
        # The last segment returns all four of the detector's outputs, in the whole model's order.
        assert result.segments[-1].outputs == [t.name for t in read_model(lite_detector).output_tensors()]
        figures.append(f"{count}: {check_parameter_split(lite_detector, result):.2f}x")
    record_property("det0_largest_segment_against_its_share", ", ".join(figures))


# --- control flow and state ------------------------------------------------------------------------------------


def _code(editor, name):
    number = getattr(fb.BuiltinOperator, name)
    code = fb.OperatorCodeT()
    code.builtinCode, code.deprecatedBuiltinCode, code.version = number, min(number, 127), 1
    editor.model.operatorCodes.append(code)
    return len(editor.model.operatorCodes) - 1


def _op(code, inputs, outputs, options_type=None, options=None):
    op = fb.OperatorT()
    op.opcodeIndex, op.inputs, op.outputs = code, list(inputs), list(outputs)
    if options is not None:
        op.builtinOptionsType, op.builtinOptions = options_type, options
    return op


def _tensor(model, name, type_name, data=None):
    tensor = fb.TensorT()
    tensor.name, tensor.shape, tensor.type, tensor.buffer = name, [1], getattr(fb.TensorType, type_name), 0
    if data is not None:
        buffer = fb.BufferT()
        buffer.data = np.frombuffer(np.float32([data]).tobytes(), np.uint8)
        model.buffers.append(buffer)
        tensor.buffer = len(model.buffers) - 1
    return tensor


def _loop(editor, limit, step_op, step):
    """A WHILE's condition (v < limit) and body (v step_op step) subgraphs; returns their indices."""
    model = editor.model
    graphs = []
    for ops in ((_code(editor, "LESS"), "limit", limit, "go", "BOOL"), (_code(editor, step_op), "step", step, "next",
                                                                        "FLOAT32")):
        graph = fb.SubGraphT()
        graph.tensors = [_tensor(model, "v", "FLOAT32"), _tensor(model, ops[1], "FLOAT32", ops[2]),
                         _tensor(model, ops[3], ops[4])]
        graph.inputs, graph.outputs, graph.operators = [0], [2], [_op(ops[0], [0, 1], [2])]
        model.subgraphs.append(graph)
        graphs.append(len(model.subgraphs) - 1)
    return graphs


def two_loops_model():
    """x -> MUL 2 -> WHILE (x3 while < 100) -> ADD 1 -> WHILE (+7 while < 500) -> MUL 2: five operators in
    subgraph 0, four more subgraphs."""
    editor = GraphEditor()
    names = ("x", "a", "b", "y", "z", "out")
    x, a, b, y, z, out = (editor.tensor(n, [1], np.float32) for n in names)
    two = editor.tensor("two", [1], np.float32, data=np.float32([2]))
    one = editor.tensor("one", [1], np.float32, data=np.float32([1]))
    editor.graph.inputs = [x]
    loop = _code(editor, "WHILE")
    editor.operator("MUL", [x, two], [a])
    for (source, target), (limit, step_op, step) in (((a, b), (100.0, "MUL", 3.0)), ((y, z), (500.0, "ADD", 7.0))):
        options = fb.WhileOptionsT()
        options.condSubgraphIndex, options.bodySubgraphIndex = _loop(editor, limit, step_op, step)
        editor.graph.operators.append(_op(loop, [source], [target], fb.BuiltinOptions.WhileOptions, options))
        if source == a:
            editor.operator("ADD", [b, one], [y])
    editor.operator("MUL", [z, two], [out])
    editor.set_outputs([out])
    return editor.to_bytes()


def test_while_loops_go_with_their_segments_renumbered():
    data = two_loops_model()
    assert segments.graph_facts(data).op_names == ("MUL", "WHILE", "ADD", "WHILE", "MUL")
    feeds = {"x": np.float32([1.5])}
    assert run(data, feeds)["out"][0] == 1006    # ((1.5 * 2 * 3 ** 5 = 243) + 1 + 7 * 37 = 503) * 2
    for cuts, subgraphs in (([2], [3, 3]), ([1, 2, 3, 4], [1, 3, 1, 3, 1]), ([4], [5, 1])):
        parts = segments.split_model(data, cuts)
        assert [len(unpack(p).subgraphs) for p in parts] == subgraphs
        assert_same_outputs(data, parts, feeds)
    # The second loop's subgraphs (3 and 4 in the whole model) are 1 and 2 in its segment.
    second = unpack(segments.split_model(data, [2])[1])
    options = second.subgraphs[0].operators[1].builtinOptions
    assert (options.condSubgraphIndex, options.bodySubgraphIndex) == (1, 2)
    step = second.subgraphs[2].tensors[1]
    assert step.name == b"step" and np.frombuffer(second.buffers[step.buffer].data.tobytes(), np.float32)[0] == 7


def test_a_model_tensorflow_converts_with_a_while_loop():
    tf = pytest.importorskip("tensorflow")

    @tf.function(input_signature=[tf.TensorSpec([1, 8], tf.float32)])
    def rolled(x):
        state = tf.nn.relu(x * 2.0)
        _, state = tf.while_loop(lambda i, s: i < 5, lambda i, s: (i + 1, tf.tanh(s * 0.5 + 1.0)),
                                 [tf.constant(0), state])
        return tf.reduce_sum(state, axis=1, keepdims=True) + 3.0

    data = tf.lite.TFLiteConverter.from_concrete_functions([rolled.get_concrete_function()], rolled).convert()
    assert len(unpack(data).subgraphs) == 3 and "WHILE" in segments.graph_facts(data).op_names
    feeds = {interpreter(data).get_input_details()[0]["name"]: np.linspace(-1, 1, 8, dtype=np.float32)[None]}
    for cuts in itertools.chain.from_iterable(itertools.combinations(range(1, 4), n) for n in (1, 2, 3)):
        assert_same_outputs(data, segments.split_model(data, list(cuts)), feeds)


def resource_variable_model():
    """VAR_HANDLE -> (ADD x x) -> ASSIGN_VARIABLE -> READ_VARIABLE -> MUL by x: the handle's users cannot part."""
    editor = GraphEditor()
    x, y, read, out = (editor.tensor(n, [1], np.float32) for n in ("x", "y", "read", "out"))
    handle = _tensor(editor.model, "handle", "RESOURCE")
    handle.shape = []
    editor.graph.tensors.append(handle)
    h = len(editor.graph.tensors) - 1
    editor.graph.inputs = [x]
    options = fb.VarHandleOptionsT()
    options.container, options.sharedName = "", "state"
    editor.graph.operators.append(_op(_code(editor, "VAR_HANDLE"), [], [h], fb.BuiltinOptions.VarHandleOptions,
                                      options))
    editor.operator("ADD", [x, x], [y])
    editor.graph.operators.append(_op(_code(editor, "ASSIGN_VARIABLE"), [h, y], []))
    editor.graph.operators.append(_op(_code(editor, "READ_VARIABLE"), [h], [read]))
    editor.operator("MUL", [read, x], [out])
    editor.set_outputs([out])
    return editor.to_bytes()


def test_a_resource_handle_keeps_its_users_together(tmp_path):
    data = resource_variable_model()
    facts = segments.graph_facts(data)
    assert facts.boundaries == (4,)
    assert segments.cuts_by_parameters(facts, 2).cuts == [4]
    assert_same_outputs(data, segments.split_model(data, [4]), {"x": np.float32([1.5])})
    with pytest.raises(Exception) as refused:
        segments.split_model(data, [2], name="state.tflite")
    assert str(refused.value) == ("state.tflite: a segment cannot start at operator 2: operators 0 and 3 share the "
                                  "handle 'handle', so they stay in one segment; cut elsewhere")
    model = tmp_path / "state.tflite"
    model.write_bytes(data)
    result = edgekit("segment", model, "--segments", 3, "--out", tmp_path / "out")
    assert result.exit_code == 1
    assert result.stderr == (f"edgekit: error: {model}: --segments 3: only 2 segments are possible, since "
                             "operators that share state stay in one segment; give --segments 2 or fewer\n")


# --- choosing cuts -------------------------------------------------------------------------------------------


def facts_of(params, last_start=None, boundaries=None):
    n = len(params)
    boundaries = tuple(range(1, n)) if boundaries is None else tuple(boundaries)
    constants = tuple(((op, size),) if size else () for op, size in enumerate(params))
    return segments.GraphFacts(n, ("OP",) * n, constants, boundaries, n - 1 if last_start is None else last_start,
                               {b: 1 for b in boundaries})


def test_parameter_split_balances_bytes():
    assert segments.cuts_by_parameters(facts_of([5, 5, 5, 5]), 2) == segments.ParameterSplit([2], [10, 10], 20)
    # One operator outweighing a share: the others are still balanced around it.
    assert segments.cuts_by_parameters(facts_of([1] * 8 + [20, 0]), 3).cuts == [4, 8]
    # The last segment holds every operator from the first that writes a model output, when it can.
    assert segments.cuts_by_parameters(facts_of([1, 1, 1, 1, 9, 9], last_start=3), 2).cuts == [3]
    assert segments.cuts_by_parameters(facts_of([1, 1, 1, 1, 9, 9], last_start=0), 2).cuts == [5]
    assert segments.cuts_by_parameters(facts_of([4, 4, 4, 4], boundaries=[1, 3]), 2).cuts == [1]


def test_cost_split_reaches_the_best_largest_segment_within_the_tolerance():
    """With a cost that adds per-operator weights, the method's result is as good as the best split found by
    trying every one, within the tolerance; each distinct segment is measured once."""
    weights = [3, 1, 4, 1, 5, 9, 2, 6, 5, 3, 5, 8, 9, 7]

    def total(cuts):
        return [float(sum(weights[s:e])) for s, e in segments.segment_bounds(list(cuts), len(weights))]

    facts = facts_of([1] * len(weights))
    for count in (2, 3, 4):
        calls = []

        def cost(start, end, index):
            calls.append((start, end))
            return float(sum(weights[start:end]))

        start = segments.cuts_by_parameters(facts, count).cuts
        found = segments.cuts_by_cost(facts, count, cost, start, tolerance=0.5)
        best = min(max(total(c)) for c in itertools.combinations(range(1, len(weights)), count - 1))
        assert max(found.costs) <= best + 0.5 and found.costs == total(found.cuts)
        assert len(set(calls)) == len(calls) == found.evaluated
        assert found.bounds == (min(total(start)), max(total(start)))


def test_cost_split_skips_segments_that_cannot_be_made():
    """A candidate the compiler fails on costs infinity and is never chosen: without it, 4 + 4 operators."""
    def cost(start, end, index):
        return float("inf") if (start, end) == (0, 4) else float(end - start)

    found = segments.cuts_by_cost(facts_of([1] * 8), 2, cost, [1], tolerance=0.1)
    assert found.cuts == [3] and found.costs == [3.0, 5.0]


# --- the command line ------------------------------------------------------------------------------------------


def test_segment_command_writes_the_files_and_json(coral, tmp_path):
    model = coral("mobilenet_v2_1.0_224_quant.tflite")
    out = tmp_path / "segments"
    result = edgekit("segment", model, "--segments", 2, "--out", out, "--json")
    assert result.exit_code == 0, result.output
    document = json.loads(result.stdout)
    files = [str(out / name) for name in segments.segment_names("mobilenet_v2_1.0_224_quant", 2)]
    assert document["files"] == files and document["count"] == 2 and document["by"] == "params"
    assert sorted(p.name for p in out.iterdir()) == [Path(f).name for f in files]
    cut = document["cuts"][0]
    assert [s["operators"] for s in document["segments"]] == [[0, cut], [cut, 66]]
    assert document["segments"][0]["inputs"] == ["input"]
    assert document["segments"][1]["outputs"] == ["MobilenetV2/Predictions/Softmax"]
    assert document["segments"][0]["outputs"] == document["segments"][1]["inputs"]
    assert sum(s["parameter_bytes"] for s in document["segments"]) == document["total_parameter_bytes"]
    assert document["latency_ms"] is None and document["measured"] == 0
    digest = segments.model_digest(model.read_bytes())
    for k, file in enumerate(files):
        assert read_edgekit_metadata(read_model(file)) == {"segment": {"index": k, "count": 2, "model": digest,
                                                                       "name": model.name}}
    text = edgekit("segment", model, "--segments", 2, "--out", out)
    assert text.exit_code == 0
    assert text.stdout.splitlines()[0] == f"cut {model} into 2 segments by parameter bytes, at operators {cut}:"
    assert text.stdout.splitlines()[1].startswith(f"  {files[0]}: operators 0-{cut - 1}, ")


@pytest.mark.parametrize("args, line", [
    (("--segments", 1), "{model}: --segments 1: a model is cut into 2 segments or more; give --segments 2 or more"),
    (("--segments", 4), "{model}: --segments 4 is more than its 3 operators; give --segments 3 or fewer"),
])
def test_segment_refuses_a_count_that_cannot_be(coral, tmp_path, args, line):
    model = coral("tools/split_concat.tflite")
    result = edgekit("segment", model, *args, "--out", tmp_path)
    assert result.exit_code == 1 and result.stderr == f"edgekit: error: {line.format(model=model)}\n"
    assert list(tmp_path.iterdir()) == []


def test_segment_refuses_a_compiled_model(coral, tmp_path):
    model = coral("mobilenet_v1_0.25_128_quant_edgetpu.tflite")
    twin = coral("mobilenet_v1_0.25_128_quant.tflite")
    result = edgekit("segment", model, "--segments", 2, "--out", tmp_path)
    assert result.exit_code == 1
    assert result.stderr == (f"edgekit: error: {model}: already compiled for the Edge TPU (its operators are one "
                             "edgetpu-custom-op), so it cannot be cut; segment the CPU model it came from, or let the "
                             f"compiler split that: `edgekit compile {twin} --segments 2`\n")


def test_segment_refuses_a_model_whose_output_no_operator_writes(tmp_path):
    editor = GraphEditor()
    x, y = editor.tensor("x", [1], np.float32), editor.tensor("y", [1], np.float32)
    editor.graph.inputs = [x]
    editor.operator("ADD", [x, x], [y])
    editor.set_outputs([y, x])
    model = tmp_path / "echo.tflite"
    model.write_bytes(editor.to_bytes())
    result = edgekit("segment", model, "--segments", 2, "--out", tmp_path / "out")
    assert result.exit_code == 1
    assert result.stderr == (f"edgekit: error: {model}: its output 'x' is written by no operator (it is one of its "
                             "inputs), so no segment would produce it; such a model cannot be segmented\n")


def test_split_model_refuses_cuts_that_are_not_operator_indices(coral):
    data = coral("tools/split_concat.tflite").read_bytes()
    for cuts in ([0], [3], [2, 1], [1, 1]):
        with pytest.raises(Exception) as refused:
            segments.split_model(data, cuts, name="split_concat.tflite")
        assert str(refused.value) == (f"split_concat.tflite: cuts {cuts}: give increasing operator indices from 1 to "
                                      "2, each where a segment starts")
    with pytest.raises(Exception) as refused:
        partition.segment_model(coral("tools/split_concat.tflite"), 2, "unused", by="speed")
    assert str(refused.value) == "unknown --by 'speed': use params or latency"


def small_model(dead=False, same_names=False, external=False):
    """x -> ADD x x -> a -> MUL a x -> out, with an operator whose result nothing uses, two tensors of one name,
    or a constant kept outside the flatbuffer."""
    editor = GraphEditor()
    x, a, out = (editor.tensor(n, [1], np.float32) for n in ("x", "out" if same_names else "a", "out"))
    editor.graph.inputs = [x]
    editor.operator("ADD", [x, x], [a])
    if dead:
        editor.operator("SUB", [x, x], [editor.tensor("unused", [1], np.float32)])
    if external:
        weight = editor.tensor("w", [1], np.float32, data=np.float32([2]))
        buffer = editor.model.buffers[editor.graph.tensors[weight].buffer]
        buffer.data, buffer.offset, buffer.size = None, 4096, 4
        editor.operator("MUL", [a, weight], [out])
    else:
        editor.operator("MUL", [a, x], [out])
    editor.set_outputs([out])
    return editor.to_bytes()


@pytest.mark.parametrize("model, cuts, line", [
    (small_model(dead=True), [1, 2], "m.tflite: operator 1 produces nothing that a later operator or the model's "
                                     "output uses, so a segment of them would have no outputs; cut elsewhere"),
    (small_model(same_names=True), [1], "m.tflite: two tensors are named 'out', and segments are joined by tensor "
                                        "name; rename one in the model, or cut elsewhere"),
    (small_model(external=True), [1], "m.tflite: keeps data outside its flatbuffer (a model over 2 GB, or external "
                                      "weights), which edgekit cannot copy into segments; segment a smaller model"),
])
def test_split_model_refuses_what_segments_cannot_carry(model, cuts, line):
    with pytest.raises(Exception) as refused:
        segments.split_model(model, cuts, name="m.tflite")
    assert str(refused.value) == line


# --- compile --partition profile ---------------------------------------------------------------------------


def test_profile_without_edge_tpus_or_compiler_says_what_is_missing(coral, tmp_path, no_edgetpu_compiler):
    found = len(partition.edge_tpu_devices())
    if found >= 2:
        pytest.skip(f"{found} Edge TPUs are attached here")
    model = coral("mobilenet_v1_0.25_128_quant.tflite")
    result = edgekit("compile", model, "--segments", 2, "--partition", "profile", "-o", tmp_path)
    assert result.exit_code == 3
    assert result.stderr == (f"edgekit: error: {model}: --partition profile compiles candidate segments and times "
                             f"each on its own Edge TPU, but this machine has {found} of the 2 Edge TPUs it needs and "
                             "no edgetpu_compiler; attach 2 Edge TPUs (one per segment) and install edgetpu_compiler "
                             "(x86-64 Linux; `edgekit compile` without it says how), or leave out --partition "
                             "profile to let the compiler split by parameter size\n")
    os.environ["PATH"] = f"{STANDIN}{os.pathsep}{os.environ['PATH']}"    # restored by no_edgetpu_compiler
    result = edgekit("compile", model, "--segments", 2, "--partition", "profile", "-o", tmp_path)
    assert result.exit_code == 3
    assert result.stderr == (f"edgekit: error: {model}: --partition profile compiles candidate segments and times "
                             f"each on its own Edge TPU, but this machine has {found} of the 2 Edge TPUs it needs; "
                             "attach 2 Edge TPUs (one per segment), or leave out --partition profile to let the "
                             "compiler split by parameter size\n")
    assert list(tmp_path.iterdir()) == []


def test_profile_refuses_what_it_cannot_do(coral, tmp_path):
    model = coral("mobilenet_v1_0.25_128_quant.tflite")
    result = edgekit("compile", model, "--partition", "profile", "-o", tmp_path)
    assert result.exit_code == 1 and result.stderr == (
        f"edgekit: error: {model}: --partition profile moves the cuts between segments; give --segments 2 or more\n")
    result = edgekit("compile", model, coral("tools/split_concat.tflite"), "--segments", 2, "--partition", "profile")
    assert result.exit_code == 1 and result.stderr == (
        "edgekit: error: --partition profile takes one model (2 given), since its segments are timed apart; compile "
        "the others in another `edgekit compile`\n")


def test_profile_compiles_timed_candidates_with_the_standin(coral, tmp_path, monkeypatch):
    """The whole profile search, with the stand-in compiler (which copies each segment as its "compiled" file)
    and the CPU as the devices: the segments it writes and compiles give the whole model's outputs."""
    monkeypatch.setenv("PATH", f"{STANDIN}{os.pathsep}{os.environ['PATH']}")
    monkeypatch.delenv("EDGETPU_COMPILER", raising=False)
    model = coral("keras_lstm_mnist_ptq.tflite")
    options = compiler.DEFAULT_OPTIONS._replace(out_dir=str(tmp_path), segments=2, partition="profile")
    result = partition.compile_profiled([model], options, devices=["cpu", "cpu"], repeats=3)
    stem = "keras_lstm_mnist_ptq"
    assert result.outputs == [str(tmp_path / n) for n in segments.segment_names(stem, 2, "_edgetpu.tflite")]
    assert result.partition.cpu_segments == [str(tmp_path / n) for n in segments.segment_names(stem, 2)]
    assert len(result.partition.latency_ms) == 2 and result.partition.measured >= 2
    assert len(result.command) == 2 and all("--search_delegate" in c for c in result.command)
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".edgekit")]
    assert_same_outputs(model, result.outputs, picture_inputs(model, coral("mnist_nine.bmp")))


@pytest.mark.edgetpu
def test_profile_on_edge_tpus(coral, tmp_path):
    """On a machine with two Edge TPUs and edgetpu_compiler: the compiled segments and their measured latency."""
    if compiler.find_compiler() is None:
        pytest.skip("edgetpu_compiler is not installed here")
    model = coral("mobilenet_v2_1.0_224_quant.tflite")
    result = edgekit("compile", model, "--segments", 2, "--partition", "profile", "-o", tmp_path, "--json")
    assert result.exit_code == 0, result.output
    document = json.loads(result.stdout)
    names = segments.segment_names("mobilenet_v2_1.0_224_quant", 2, "_edgetpu.tflite")
    assert document["outputs"] == [str(tmp_path / n) for n in names]
    assert all(read_model(f).is_edgetpu_compiled for f in document["outputs"])
    assert len(document["partition"]["latency_ms"]) == 2

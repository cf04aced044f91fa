"""The pure-Python reader against the TFLite schema's own object API (ai_edge_litert), on every test model."""

import numpy as np
import pytest
from ai_edge_litert import schema_py_generated as fb

from edgekit.tflite import schema
from edgekit.tflite.model import read_model

MODELS = ["mobilenet_v1_0.25_128_quant", "mobilenet_v1_0.5_160_quant", "mobilenet_v2_1.0_224_quant",
          "keras_lstm_mnist_ptq", "tools/split_concat", "deeplabv3_mnv2_dm05_pascal_quant"]
FILES = [m + suffix + ".tflite" for m in MODELS for suffix in ("", "_edgetpu")] + \
        ["invalid_models/model_invoking_error.tflite"]
BUILTIN_NAMES = {v: k for k, v in vars(fb.BuiltinOperator).items() if not k.startswith("_")}
TYPE_NAMES = {v: k for k, v in vars(fb.TensorType).items() if not k.startswith("_")}


def _text(value):
    return value.decode() if isinstance(value, bytes) else (value or "")


def _ints(values):
    return tuple(int(v) for v in values) if values is not None else ()


@pytest.mark.parametrize("name", FILES)
def test_matches_the_schema_object_api(coral, name):
    path = coral(name)
    ours = read_model(path)
    theirs = fb.ModelT.InitFromPackedBuf(bytearray(path.read_bytes()), 0)
    assert ours.version == theirs.version and ours.description == _text(theirs.description)
    assert len(ours.subgraphs) == len(theirs.subgraphs)
    for graph, ref in zip(ours.subgraphs, theirs.subgraphs):
        assert (graph.inputs, graph.outputs) == (_ints(ref.inputs), _ints(ref.outputs))
        assert len(graph.operators) == len(ref.operators) and len(graph.tensors) == len(ref.tensors)
        for op, r in zip(graph.operators, ref.operators):
            code = theirs.operatorCodes[r.opcodeIndex]
            builtin = max(code.builtinCode, code.deprecatedBuiltinCode)
            expected = _text(code.customCode) if builtin == fb.BuiltinOperator.CUSTOM else BUILTIN_NAMES[builtin]
            assert (op.name, op.version) == (expected, code.version)
            assert (op.inputs, op.outputs) == (_ints(r.inputs), _ints(r.outputs))
            assert op.custom_options == bytes(bytearray(r.customOptions if r.customOptions is not None else []))
        for t, r in zip(graph.tensors, ref.tensors):
            assert (t.name, t.type, t.buffer) == (_text(r.name), TYPE_NAMES[r.type], r.buffer)
            assert t.shape == _ints(r.shape)
            assert t.shape_signature == (_ints(r.shapeSignature) or _ints(r.shape))
            q = r.quantization
            scale = np.asarray(q.scale if q is not None and q.scale is not None else [], np.float32)
            zero = np.asarray(q.zeroPoint if q is not None and q.zeroPoint is not None else [], np.int64)
            np.testing.assert_array_equal(t.quantization.scale, scale)
            np.testing.assert_array_equal(t.quantization.zero_point, zero)
            if q is not None:
                assert t.quantization.quantized_dimension == q.quantizedDimension
            # A model may have no buffers at all (Coral's 488-byte invalid model): then nothing is constant.
            data = theirs.buffers[r.buffer].data if r.buffer < len(theirs.buffers or []) else None
            assert (t.data is not None and len(t.data) > 0) == (data is not None and len(data) > 0)
            if t.is_constant:
                assert bytes(t.data) == bytes(np.asarray(data, np.uint8))
    assert ours.metadata.keys() == {_text(m.name) for m in theirs.metadata or []}
    assert [(s.key, s.subgraph_index) for s in ours.signatures] == \
        [(_text(s.signatureKey), s.subgraphIndex) for s in theirs.signatureDefs or []]


def test_schema_tables_agree_with_the_generated_enums():
    for code, name in enumerate(schema.BUILTIN_OPS):
        assert BUILTIN_NAMES.get(code, name) == name
    for code, entry in enumerate(schema.TENSOR_TYPES):
        assert TYPE_NAMES.get(code, entry[0]) == entry[0]


def test_producers_consumers_and_parameters(coral):
    model = read_model(coral("mobilenet_v1_0.25_128_quant.tflite"))
    graph = model.main
    producers, consumers = graph.producers(), graph.consumers()
    first = graph.operators[0]
    assert graph.inputs[0] not in producers and consumers[graph.inputs[0]] == [0]
    assert producers[first.outputs[0]] == 0 and consumers[first.outputs[0]] == [1]
    weights = graph.tensors[first.inputs[1]]
    assert graph.parameter_bytes(first) == len(weights.data) + len(graph.tensors[first.inputs[2]].data)
    assert weights.numpy().shape == weights.shape and weights.is_quantized


def test_signatures_and_metadata(coral):
    model = read_model(coral("keras_lstm_mnist_ptq.tflite"))
    assert model.signatures and model.signatures[0].key == "serving_default"
    assert model.signatures[0].inputs and model.signatures[0].outputs
    assert "min_runtime_version" in model.metadata


def test_reads_bytes_as_well_as_paths(coral):
    path = coral("tools/split_concat.tflite")
    from_bytes = read_model(path.read_bytes(), name="x.tflite")
    assert from_bytes.path == "x.tflite" and len(from_bytes.main.operators) == 3

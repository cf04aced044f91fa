"""`inspect` on every compiled twin in the test data."""

import json

import pytest

from edgekit.cli.cmd_inspect import format_inspection
from edgekit.compiler import compiled_model
from edgekit.tflite.model import EDGETPU_CUSTOM_OP, read_model

TWINS = ["mobilenet_v1_0.25_128_quant", "mobilenet_v1_0.5_160_quant", "mobilenet_v2_1.0_224_quant",
         "keras_lstm_mnist_ptq", "tools/split_concat", "deeplabv3_mnv2_dm05_pascal_quant"]


@pytest.mark.parametrize("name", TWINS)
def test_every_twin(coral, name):
    path = coral(name + "_edgetpu.tflite")
    report = compiled_model.inspect_file(path)
    model = read_model(path)
    assert report.compiled
    assert len(report.custom_ops) == sum(op.name == EDGETPU_CUSTOM_OP for op in model.operators())
    assert [c.op for c in report.cpu_ops] == [op.name for op in model.operators() if op.name != EDGETPU_CUSTOM_OP]
    for c in report.custom_ops:
        types = [x.type for p in c.packages for x in p.executables]
        # Coral's twins are all parameter-caching builds: one caching + one execution-only executable.
        assert sorted(types) == ["EXECUTION_ONLY", "PARAMETER_CACHING"]
        assert c.cached_bytes > 0 and c.instruction_bytes > 0
        assert all(p.min_runtime_version in (12, 13) for p in c.packages)
        tokens = {x.caching_token for p in c.packages for x in p.executables}
        assert len(tokens) == 1 and 0 not in tokens
    document = compiled_model.to_document(report)
    json.dumps(document)
    text = format_inspection(report)
    assert "summary:" in text and "ops left on the CPU" in text


def test_layers_match_the_custom_op_tensors(coral):
    report = compiled_model.inspect_file(coral("mobilenet_v1_0.25_128_quant_edgetpu.tflite"))
    execution = [x for p in report.custom_ops[0].packages for x in p.executables if x.type == "EXECUTION_ONLY"][0]
    layer = execution.input_layers[0]
    assert (layer.shape, compiled_model.layer_dtype(layer), layer.zero_point) == ((128, 128, 3), "uint8", 128)
    assert layer.scale == pytest.approx(1 / 128)
    assert execution.output_layers[0].shape[-1] == 1001


def test_deeplab_cpu_ops_and_totals(coral):
    report = compiled_model.inspect_file(coral("deeplabv3_mnv2_dm05_pascal_quant_edgetpu.tflite"))
    assert report.summary["cpu_op_counts"] == {"RESIZE_BILINEAR": 3, "QUANTIZE": 1, "CONCATENATION": 1,
                                               "CONV_2D": 2, "ARG_MAX": 1}
    assert report.summary["cached_bytes"] == 766720 and report.summary["streamed_bytes"] == 0
    assert report.summary["min_runtime_version"] == 12


def test_lstm_twin_keeps_int16_state_on_chip(coral):
    # The manifest calls this twin partially mapped, but it holds one custom op and nothing else.
    report = compiled_model.inspect_file(coral("keras_lstm_mnist_ptq_edgetpu.tflite"))
    assert report.cpu_ops == []
    layers = [x for p in report.custom_ops[0].packages for x in p.executables if x.input_layers][0].input_layers
    assert [compiled_model.layer_dtype(layer) for layer in layers] == ["uint8", "int8", "int16"]


def test_cpu_model_is_not_compiled(coral):
    report = compiled_model.inspect_file(coral("mobilenet_v1_0.25_128_quant.tflite"))
    assert not report.compiled
    assert "edgekit check" in compiled_model.to_document(report)["message"]

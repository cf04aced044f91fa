"""`check` against the real compiler's verdicts (the compiled twins), and each rule on its own."""

from collections import Counter

import numpy as np
import pytest
import tpu_models

from edgekit.compiler import check, rules
from edgekit.tflite.model import (EDGETPU_CUSTOM_OP, NO_QUANTIZATION, Model, Operator, Quantization,
                                  Subgraph, Tensor, read_model)

PAIRS = ["mobilenet_v1_0.25_128_quant", "mobilenet_v1_0.5_160_quant", "mobilenet_v2_1.0_224_quant",
         "keras_lstm_mnist_ptq", "tools/split_concat", "deeplabv3_mnv2_dm05_pascal_quant"]


@pytest.mark.parametrize("name", PAIRS)
def test_cpu_ops_match_the_compiled_twin(coral, name):
    twin = read_model(coral(name + "_edgetpu.tflite"))
    truth = Counter(op.name for op in twin.operators() if op.name != EDGETPU_CUSTOM_OP)
    prediction = check.predict(read_model(coral(name + ".tflite")))
    assert prediction.fatal is None
    assert Counter(v.op for v in prediction.ops if v.status == "cpu") == truth


def test_deeplab_resizes_are_cut_by_align_corners(coral):
    prediction = check.predict(read_model(coral("deeplabv3_mnv2_dm05_pascal_quant.tflite")))
    resizes = [v for v in prediction.ops if v.op == "RESIZE_BILINEAR"]
    assert all(v.reason == rules.UNSPECIFIED and "align_corners" in v.detail for v in resizes)
    assert (prediction.cut.index, prediction.cut.op) == (64, "RESIZE_BILINEAR")
    assert any("--intermediate" in f for f in prediction.fixes)


def test_lstm_needs_runtime_14_and_cuts_the_rest(coral):
    prediction = check.predict(read_model(coral("keras_lstm_mnist_ptq.tflite")), min_runtime=13)
    by_op = {v.op: v for v in prediction.ops}
    assert by_op["UNIDIRECTIONAL_SEQUENCE_LSTM"].reason == rules.NOT_SUPPORTED
    assert by_op["SOFTMAX"].reason == rules.MORE_THAN_ONE_SUBGRAPH
    assert prediction.ops[0].status == "tpu"          # the uint8->int8 QUANTIZE in front still maps
    assert any("--min-runtime to 14" in f for f in prediction.fixes)


def test_multiple_subgraphs_do_not_cut(coral):
    prediction = check.predict(read_model(coral("deeplabv3_mnv2_dm05_pascal_quant.tflite")),
                               multiple_subgraphs=True)
    assert Counter(v.op for v in prediction.ops if v.status == "cpu") == {"RESIZE_BILINEAR": 3, "ARG_MAX": 1}


def test_parameters_within_cache(coral):
    prediction = check.predict(read_model(coral("mobilenet_v2_1.0_224_quant.tflite")))
    assert 3_000_000 < prediction.parameter_bytes == prediction.cached_bytes
    assert prediction.streamed_bytes == 0


def test_float_model_is_not_quantized(coral, tmp_path):
    path = tpu_models.all_float(coral("tools/split_concat.tflite"), tmp_path / "float.tflite")
    prediction = check.predict(read_model(path))
    assert "model not quantized" in prediction.fatal.message
    assert "CONCATENATION x2" in prediction.fatal.message and "SPLIT" in prediction.fatal.message
    assert all(v.reason == rules.DATA_TYPE for v in prediction.ops)


def test_float_input_quantize_stays_in_front(coral, tmp_path):
    path = tpu_models.float_input(coral("mobilenet_v1_0.25_128_quant.tflite"), tmp_path / "fi.tflite")
    prediction = check.predict(read_model(path))
    assert [v.op for v in prediction.ops if v.status == "cpu"] == ["QUANTIZE"]
    assert prediction.cut is None and prediction.fatal is None
    assert any("inference_input_type" in f for f in prediction.fixes)


def test_dynamic_batch_is_fatal(coral, tmp_path):
    path = tpu_models.dynamic_batch(coral("mobilenet_v1_0.25_128_quant.tflite"), tmp_path / "dyn.tflite")
    fatal = check.predict(read_model(path)).fatal
    assert "dynamic shape [-1, 128, 128, 3]" in fatal.message and "batch to 1" in fatal.fix
    assert fatal.compiler_says == rules.FATAL_DYNAMIC


def test_too_new_op_version_is_fatal(coral, tmp_path):
    path = tpu_models.op_version(coral("mobilenet_v1_0.25_128_quant.tflite"), tmp_path / "v6.tflite", "CONV_2D", 6)
    fatal = check.predict(read_model(path)).fatal
    assert "CONV_2D is version 6" in fatal.message and "up to version 5" in fatal.message
    assert "Didn't find op for builtin opcode 'CONV_2D' version '6'" in fatal.compiler_says


def test_leaky_relu_cuts_and_suggests_prelu(coral, tmp_path):
    path = tpu_models.replace_op(coral("mobilenet_v1_0.25_128_quant.tflite"), tmp_path / "lr.tflite", 3,
                                 "LEAKY_RELU")
    prediction = check.predict(read_model(path))
    assert prediction.cut.op == "LEAKY_RELU" and prediction.cut.reason == rules.NOT_SUPPORTED
    assert "PRELU" in prediction.cut.detail
    assert [v.status for v in prediction.ops[:3]] == ["tpu"] * 3
    assert all(v.reason == rules.MORE_THAN_ONE_SUBGRAPH for v in prediction.ops[4:])


def test_batch_of_two_breaks_the_rank_rule(coral, tmp_path):
    path = tpu_models.batch_of(coral("tools/split_concat.tflite"), tmp_path / "b2.tflite", 2)
    prediction = check.predict(read_model(path))
    assert {v.reason for v in prediction.ops} == {rules.RANK}


def test_versions_table_matches_known_compiler_failures():
    # Versions users saw compiler 16 reject: google-coral/edgetpu#631 (CONV_2D v6), #845 (TRANSPOSE_CONV v4),
    # google-coral/libedgetpu#71 (EXP v2), and QUANTIZE v3 from TF 2.16 conversions.
    for op, version in (("CONV_2D", 6), ("TRANSPOSE_CONV", 4), ("QUANTIZE", 3), ("EXP", 2)):
        assert rules.max_version(op) == version - 1
    assert rules.max_version("GELU") == 0 and rules.max_version("CONV_2D") == 5


# --- single rules on hand-built graphs ---------------------------------------------------------------

def _t(index, shape, dtype="UINT8", data=None):
    quant = Quantization(np.array([0.5], np.float32), np.array([0])) if dtype in ("UINT8", "INT8") \
        else NO_QUANTIZATION
    buf = None if data is None else memoryview(np.asarray(data).tobytes())
    return Tensor(index, f"t{index}", dtype, tuple(shape), tuple(shape), 0, quant, False, buf)


def _graph(name, tensors, inputs, options=None, outputs=(1,)):
    op = Operator(0, name, False, 1, tuple(inputs), tuple(outputs), options or {})
    return Subgraph(0, "main", tensors, [op], (0,), tuple(outputs))


def _verdict(graph, runtime=14):
    model = Model("m.tflite", 0, 3, "", [graph], {})
    return check.predict(model, runtime).ops[0]


@pytest.mark.parametrize("size, ok", [(1001, True), (16000, True), (16001, False)])
def test_softmax_size(size, ok):
    graph = _graph("SOFTMAX", [_t(0, (1, size)), _t(1, (1, size))], [0])
    assert (_verdict(graph).status == "tpu") is ok


def test_softmax_must_be_one_dimensional():
    graph = _graph("SOFTMAX", [_t(0, (1, 4, 10)), _t(1, (1, 4, 10))], [0])
    assert "not 1-D" in _verdict(graph).detail


@pytest.mark.parametrize("strides, reason", [([1, 1, 1, 1], rules.MAPPED), ([1, 2, 2, 1], rules.STRIDES)])
def test_strided_slice_strides(strides, reason):
    const = [_t(i, (4,), "INT32", np.array(v, np.int32)) for i, v in ((2, [0] * 4), (3, [1, 4, 4, 3]), (4, strides))]
    graph = _graph("STRIDED_SLICE", [_t(0, (1, 8, 8, 3)), _t(1, (1, 4, 4, 3))] + const, [0, 2, 3, 4])
    assert _verdict(graph).reason == reason


@pytest.mark.parametrize("src, dst, align, ok", [((4, 4), (8, 8), False, True), ((4, 4), (6, 6), False, False),
                                                 ((4, 4), (8, 8), True, False)])
def test_resize_rule(src, dst, align, ok):
    size = _t(2, (2,), "INT32", np.array(dst, np.int32))
    graph = _graph("RESIZE_BILINEAR", [_t(0, (1, *src, 8)), _t(1, (1, *dst, 8)), size], [0, 2],
                   {"align_corners": align, "half_pixel_centers": not align})
    assert (_verdict(graph).status == "tpu") is ok


def test_concatenation_constant_must_be_second_and_zero():
    zeros, ones = np.zeros((1, 2, 2, 1), np.uint8), np.ones((1, 2, 2, 1), np.uint8)
    for data, ok in ((zeros, True), (ones, False)):
        tensors = [_t(0, (1, 2, 2, 1)), _t(1, (1, 2, 2, 2)), _t(2, (1, 2, 2, 1), data=data)]
        tensors[2].quantization = Quantization(np.array([0.5], np.float32), np.array([0]))
        assert (_verdict(_graph("CONCATENATION", tensors, [0, 2])).status == "tpu") is ok


def test_fused_activation_on_pooling_and_dilation():
    pool = _graph("MAX_POOL_2D", [_t(0, (1, 4, 4, 8)), _t(1, (1, 2, 2, 8))], [0], {"fused_activation_function": 1})
    assert "RELU" in _verdict(pool).detail
    conv = _graph("DEPTHWISE_CONV_2D", [_t(0, (1, 4, 4, 8)), _t(1, (1, 4, 4, 8))], [0],
                  {"dilation_w_factor": 2, "dilation_h_factor": 2})
    assert _verdict(conv, runtime=12).reason == rules.NOT_SUPPORTED
    assert _verdict(conv, runtime=13).status == "tpu"


def test_mean_over_batch_and_depth():
    for axes, ok in (([1, 2], True), ([0], False), ([3], False)):
        axis = _t(2, (len(axes),), "INT32", np.array(axes, np.int32))
        graph = _graph("MEAN", [_t(0, (1, 4, 4, 6)), _t(1, (1, 1, 1, 6)), axis], [0, 2])
        assert (_verdict(graph).status == "tpu") is ok


def test_custom_op_is_not_supported():
    graph = _graph("TFLite_Detection_PostProcess", [_t(0, (1, 10, 4)), _t(1, (1, 10, 4))], [0])
    graph.operators[0].is_custom = True
    assert _verdict(graph).reason == rules.NOT_SUPPORTED


def test_dequantize_at_the_output_stays_on_cpu(coral, tmp_path):
    path = tpu_models.float_output(coral("mobilenet_v1_0.25_128_quant.tflite"), tmp_path / "fo.tflite")
    prediction = check.predict(read_model(path))
    (cpu,) = [v for v in prediction.ops if v.status == "cpu"]
    assert cpu.op == "DEQUANTIZE" and cpu.reason == rules.NOT_SUPPORTED and "uint8" in cpu.detail
    assert prediction.fatal is None


def test_one_stray_float_op_is_named(coral, tmp_path):
    path = tpu_models.float_tensor(coral("mobilenet_v1_0.25_128_quant.tflite"), tmp_path / "f1.tflite", 5)
    prediction = check.predict(read_model(path))
    assert prediction.fatal is None and prediction.cut.index == 5
    assert [v.index for v in prediction.float_ops] == [5, 6]        # the op writing it and the one reading it
    assert prediction.fixes[0].startswith("2 ops work on float (DEPTHWISE_CONV_2D, CONV_2D): convert with "
                                          "full-integer")


def test_parameters_beyond_the_cache_are_streamed(coral, tmp_path):
    path = tpu_models.big_weights(coral("mobilenet_v1_0.25_128_quant.tflite"), tmp_path / "big.tflite", 8 << 20)
    prediction = check.predict(read_model(path))
    assert prediction.cached_bytes == rules.ON_CHIP_CACHE_BYTES
    assert prediction.streamed_bytes == prediction.parameter_bytes - rules.ON_CHIP_CACHE_BYTES > 1 << 20
    assert any("--segments" in f for f in prediction.fixes)

"""The compiler-output parser on recorded outputs (tests/compiler/outputs/, compiler 16's documented format)."""

from collections import Counter
from pathlib import Path

import pytest

from edgekit.compiler import check, compiler_log, rules
from edgekit.tflite.model import read_model

OUTPUTS = Path(__file__).parent / "outputs"


def parsed(name):
    return compiler_log.parse_output((OUTPUTS / name).read_text())


def test_success_with_show_operations():
    r = parsed("deeplab_show_operations.txt")
    assert (r.version, r.compiled, r.compile_ms, r.fatal) == ("16.0.384591198", True, 1172, None)
    (m,) = r.models
    assert m.input_model == "deeplabv3_mnv2_dm05_pascal_quant.tflite"
    assert m.on_chip_used == round(748.75 * 1024) and m.off_chip_streamed == 0
    assert (m.subgraphs, m.total_ops, m.tpu_ops, m.cpu_ops) == (1, 72, 64, 8)
    assert m.log_file == "deeplabv3_mnv2_dm05_pascal_quant_edgetpu.log"
    assert sum(row.count for row in m.rows) == 72


def test_every_status_string_in_a_log():
    (m,) = parsed("all_statuses_edgetpu.log").models
    assert {row.status for row in m.rows} == set(rules.STATUSES)
    assert compiler_log.compiler_cpu_ops(m.rows) == Counter({"ADD": 3, "RESIZE_NEAREST_NEIGHBOR": 1, "DEQUANTIZE": 1,
                                                      "LEAKY_RELU": 2, "TRANSPOSE_CONV": 1, "STRIDED_SLICE": 1,
                                                      "RESHAPE": 1})


def test_folded_table_and_multiple_subgraphs():
    r = parsed("folded_multiple_subgraphs.txt")
    (m,) = r.models
    assert m.subgraphs == 2 and m.off_chip_streamed == round(1.08 * 1024 * 1024)
    assert m.rows[-1] == compiler_log.OpRow(None, 0, rules.ALL_OTHERS_MAPPED)
    assert compiler_log.compiler_cpu_ops(m.rows) == Counter({"RESHAPE": 2, "CONCATENATION": 1})


def test_cocompiled_models_each_get_a_block():
    r = parsed("cocompiled.txt")
    assert [m.input_model for m in r.models] == ["mobilenet_v1_0.25_128_quant.tflite",
                                                 "mobilenet_v2_1.0_224_quant.tflite"]
    assert r.models[1].on_chip_remaining == round(2.66 * 1024 * 1024)


@pytest.mark.parametrize("name, message", [
    ("fatal_parse.txt", rules.FATAL_PARSE), ("fatal_internal.txt", rules.FATAL_INTERNAL),
    ("fatal_activations.txt", rules.FATAL_ACTIVATIONS), ("fatal_dynamic.txt", rules.FATAL_DYNAMIC)])
def test_fatal_messages(name, message):
    r = parsed(name)
    assert not r.compiled and r.fatal.message == message and r.fatal.fix
    assert r.models == []


def test_silent_failure_is_still_a_failure():
    r = parsed("failed_silently.txt")
    assert not r.compiled and r.fatal.message == "Compilation failed!"


def test_merge_log_gives_stdout_the_full_table():
    stdout = compiler_log.parse_output((OUTPUTS / "cocompiled.txt").read_text().replace(
        "mobilenet_v2_1.0_224_quant", "deeplabv3_mnv2_dm05_pascal_quant"))
    merged = compiler_log.merge_log(stdout, (OUTPUTS / "deeplab_edgetpu.log").read_text())
    assert merged.models[0].rows == [] and len(merged.models[1].rows) == 10


def test_compare_with_check(coral):
    prediction = check.predict(read_model(coral("deeplabv3_mnv2_dm05_pascal_quant.tflite")))
    (m,) = parsed("deeplab_edgetpu.log").models
    assert compiler_log.compare(m.rows, prediction) == []
    wrong = [r._replace(status=rules.MAPPED) if r.op == "ARG_MAX" else r for r in m.rows]
    assert compiler_log.compare(wrong, prediction) == [compiler_log.Disagreement("ARG_MAX", 1, 0)]


def test_sizes():
    assert compiler_log.parse_size("7.02MiB") == round(7.02 * 1048576)
    assert compiler_log.parse_size("0.00B") == 0 and compiler_log.parse_size("80.00KiB") == 81920
    assert compiler_log.parse_size("lots") is None


def test_unknown_lines_and_statuses_are_tolerated():
    text = ("Edge TPU Compiler version 17.1.0\nsome new banner\nOperator                       Count      Status\n\n"
            "CONV_2D                        3          A status a newer compiler invented\n")
    (m,) = compiler_log.parse_output(text).models
    assert compiler_log.compiler_cpu_ops(m.rows) == Counter({"CONV_2D": 3})


def test_nothing_mapped_by_an_older_compiler():
    # Compiler 15 prints no timer line; a float model maps nothing and still "compiles successfully".
    r = parsed("nothing_mapped_v15.txt")
    (m,) = r.models
    assert r.version == "15.0.340273435" and r.compiled
    assert (m.subgraphs, m.tpu_ops, m.cpu_ops, m.on_chip_used) == (0, 0, 76, 0)
    assert sum(compiler_log.compiler_cpu_ops(m.rows).values()) == 76

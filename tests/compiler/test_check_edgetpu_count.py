"""`edgekit check` says how many Edge TPUs keep every parameter of a model on chip, and what to type to compile
and run it in that many segments.

Coral's guidance to check against: EfficientDet-Lite3 wants two Edge TPUs (Lite2 two, Lite4 three). Lite3 is
made here by `edgekit convert` at 128 pixels, the smallest input its five feature levels take: parameters do
not depend on the input size, and the conversion stays cheap (two calibration pictures).
"""

import json
import os

import numpy as np
import pytest

from cli_runner import edgekit
from edgekit.compiler import check, rules
from edgekit.runtime.segmented import SEGMENT_FILE
from edgekit.tflite import segments
from edgekit.tflite.model import read_model
from testdata import coral_file

CACHE = rules.ON_CHIP_CACHE_BYTES


@pytest.mark.parametrize("sizes, count", [
    ([], 1), ([CACHE], 1), ([CACHE, 1], 2), ([CACHE // 2] * 4, 2), ([CACHE // 2 + 1] * 4, 4),
    ([1, CACHE + 1, 1], 3), ([CACHE + 1], 1), ([CACHE - 10, 5, 5, 1], 2),
])
def test_segments_needed_fills_each_edgetpu_in_turn(sizes, count):
    assert check.segments_needed(sizes) == count


def test_a_model_that_fits_needs_one_edgetpu_and_no_command():
    path = str(coral_file("mobilenet_v2_1.0_224_quant.tflite"))
    count = check.predict(read_model(path)).edgetpus
    assert (count.count, count.commands, count.oversized) == (1, (), ())
    assert count.parameter_bytes == 3543276 and count.cache_bytes == CACHE
    result = edgekit("check", path)
    assert result.exit_code == 0
    assert "Edge TPUs to keep every parameter on chip: 1 (3.38MiB of parameters, ~6.9 MiB cached per Edge TPU)\n" \
        in result.stdout
    assert "edgekit compile" not in result.stdout and "--segments" not in result.stdout
    summary = json.loads(edgekit("check", path, "--json").stdout)["summary"]
    assert summary["edgetpus"] == {"count": 1, "parameter_bytes": 3543276, "cache_bytes": CACHE,
                                   "oversized_ops": [], "commands": []}


def test_an_op_larger_than_the_cache_streams_however_many_edgetpus(tmp_path):
    import tpu_models

    path = tpu_models.big_weights(coral_file("mobilenet_v1_0.25_128_quant.tflite"), tmp_path / "big.tflite", 8 << 20)
    count = check.predict(read_model(path)).edgetpus
    # The padded weights and the op's 8 int32 biases.
    assert count.count == 2 and [(o.index, o.op, o.parameter_bytes) for o in count.oversized] == [
        (0, "CONV_2D", (8 << 20) + 32)]
    text = edgekit("check", path).stdout
    assert "  op 0 CONV_2D alone holds 8.00MiB of parameters, more than one Edge TPU caches: it streams however " \
           "many segments\n" in text
    assert "which keeps all but the largest ops' parameters on chip" in text


def _randomized(model, seed=0):
    """`model` with every weight drawn anew, as distinct as a trained model's: the converter stores identical
    constants once, and an untrained model has some by construction (its batch norms all start at identity,
    and Keras 3 gives every call of one unseeded initializer object the same values, so layers sharing one
    start with the same kernels), so it could hold fewer parameter bytes than the trained model."""
    rng = np.random.default_rng(seed)
    for weight in model.weights:
        value = weight.numpy()
        if any(name in weight.path for name in ("gamma", "moving_variance")):
            drawn = rng.uniform(0.5, 1.5, value.shape)
        else:
            drawn = rng.standard_normal(value.shape) * (value.std() or 0.05)
        weight.assign(drawn.astype(value.dtype))
    return model


@pytest.fixture(scope="module")
def lite3(tmp_path_factory):
    """EfficientDet-Lite3, int8, as `edgekit convert` writes it (at 128 pixels)."""
    pytest.importorskip("keras")
    import shutil

    from edgekit import models
    from edgekit.converters.api import convert

    root = tmp_path_factory.mktemp("lite3")
    (root / "calibration").mkdir()
    for name in ("cat.bmp", "parrot.jpg"):
        shutil.copy(coral_file(name), root / "calibration" / name)
    model = _randomized(models.create("efficientdet-lite3", input_size=128))
    result = convert(model, str(root / "calibration"), root / "out", name="efficientdet-lite3", num_samples=2,
                     compile=False, report=False)
    return result.int8_path


@pytest.mark.slow
def test_efficientdet_lite3_needs_two_edgetpus(lite3, record_property):
    prediction = check.predict(read_model(lite3))
    count = prediction.edgetpus
    record_property("lite3_parameter_bytes", count.parameter_bytes)
    # Coral: two Edge TPUs for EfficientDet-Lite3. Its mapped parameters are over one cache and under two.
    assert CACHE < count.parameter_bytes == prediction.parameter_bytes < 2 * CACHE
    assert count.count == 2 and count.oversized == ()
    names = [f"efficientdet-lite3_int8_segment_{k}_of_2_edgetpu.tflite" for k in range(2)]
    assert count.commands == (f"edgekit compile {lite3} --segments 2",
                              f"edgekit run {names[0]} {names[1]} IMAGE... --device usb:0,usb:1")
    # The files named are those the runtime takes as the compiled segments 0 and 1 of 2 of one model.
    matches = [SEGMENT_FILE.match(name) for name in names]
    assert [(m["stem"], m["index"], m["count"], m["edgetpu"]) for m in matches] == [
        ("efficientdet-lite3_int8", str(k), "2", "_edgetpu") for k in range(2)]
    # Split as the compiler splits (parameter bytes balanced), each segment's parameters fit one Edge TPU.
    with open(lite3, "rb") as f:
        split = segments.cuts_by_parameters(segments.graph_facts(f.read()), count.count)
    assert max(split.parameter_bytes) <= CACHE

    result = edgekit("check", lite3)
    assert result.exit_code == 0
    lines = result.stdout.splitlines()
    at = lines.index("Edge TPUs to keep every parameter on chip: 2 "
                     f"({check.format_bytes(count.parameter_bytes)} of parameters, ~6.9 MiB cached per Edge TPU): "
                     "compile it in 2 segments and run them pipelined, one per Edge TPU (pci:0,pci:1,... for PCIe "
                     "cards):")
    assert lines[at + 1:at + 3] == [f"  {command}" for command in count.commands]
    assert any("compile it with --segments 2 and run the segments over 2 Edge TPUs, which keeps every parameter "
               "on chip" in line for line in lines)
    document = json.loads(edgekit("check", lite3, "--json").stdout)
    assert document["summary"]["edgetpus"] == {"count": 2, "parameter_bytes": count.parameter_bytes,
                                               "cache_bytes": CACHE, "oversized_ops": [],
                                               "commands": list(count.commands)}
    assert os.path.basename(lite3) == "efficientdet-lite3_int8.tflite"

"""Full-int8 conversion of small Keras models calibrated on real photos, checked the way the Edge TPU
compiler and `edgekit run` will see the result."""

import json
import os

import numpy as np
import pytest
from cli_runner import run_json
from photos import CORAL_PHOTOS, PHOTOS, write_photos

from edgekit.compiler import rules
from edgekit.tflite.metadata import read_edgekit_metadata
from edgekit.tflite.model import read_model

keras = pytest.importorskip("keras")

SIZE = 96
def photo_folder(folder):
    """Real photos in two subfolders (so sampling has strata) and one junk file (skipped, counted)."""
    write_photos(folder / "a", PHOTOS[0::2], CORAL_PHOTOS)
    write_photos(folder / "b", PHOTOS[1::2])
    (folder / "b" / "junk.jpg").write_text("not a picture")
    return folder


def small_classifier(classes=6, activation="relu6", seed=0):
    """A Lite-style net (conv, depthwise, 1x1, average pool, dense, softmax) with seeded weights; the dense
    layer is scaled up so its softmax is decisive, as a trained classifier's is."""
    keras.utils.set_random_seed(seed)
    images = keras.Input((SIZE, SIZE, 3), batch_size=1)
    x = keras.layers.Conv2D(16, 3, strides=2, padding="same", activation=activation)(images)
    x = keras.layers.DepthwiseConv2D(3, padding="same", activation="relu6")(x)
    x = keras.layers.Conv2D(32, 1, activation="relu6")(x)
    x = keras.layers.GlobalAveragePooling2D()(x)
    x = keras.layers.Dense(classes, kernel_initializer=keras.initializers.RandomNormal(stddev=3.0))(x)
    return keras.Model(images, keras.layers.Softmax()(x), name="small")


@pytest.fixture(scope="session")
def photos(tmp_path_factory):
    return photo_folder(tmp_path_factory.mktemp("photos"))


@pytest.fixture(scope="session")
def labels_file(tmp_path_factory):
    path = tmp_path_factory.mktemp("labels") / "labels.txt"
    path.write_text("\n".join(f"thing{i}" for i in range(6)) + "\n")
    return path


def photo_paths(folder):
    return sorted(str(p) for p in folder.rglob("*") if p.suffix in (".png", ".bmp", ".jpg") and "junk" not in p.name)


def imprint(model, paths, gain=40.0):
    """Weight imprinting (as Coral does on device): each class's dense weights are one photo's normalised
    features, so the float model has a clear, different answer per photo, like a trained classifier."""
    features = keras.Model(model.inputs, model.layers[-3].output)
    rows = np.stack([features.predict(_model_input(p), verbose=0)[0] for p in paths[:6]])
    rows = rows - rows.mean(axis=0)
    rows /= np.linalg.norm(rows, axis=1, keepdims=True)
    dense = model.layers[-2]
    dense.set_weights([(gain * rows.T).astype(np.float32), np.zeros(len(rows), np.float32)])
    return model


@pytest.fixture(scope="session")
def converted(photos, labels_file, tmp_path_factory):
    from edgekit.converters.api import convert

    model = imprint(small_classifier(), photo_paths(photos))
    out = tmp_path_factory.mktemp("out")
    result = convert(model, str(photos), out, name="small", labels=str(labels_file), write_float=True,
                     compile=False, method="minmax", bias_correction=False)
    return model, result


def test_every_tensor_is_8_bit_but_int32_constants(converted):
    _, result = converted
    model = read_model(result.int8_path)
    for t in model.main.tensors:
        assert t.type in ("UINT8", "INT8") or (t.type == "INT32" and t.is_constant), t


def test_raw_pixel_input_batch_one(converted):
    _, result = converted
    model = read_model(result.int8_path)
    (image,) = model.input_tensors()
    assert image.type == "UINT8" and image.shape == (1, SIZE, SIZE, 3) and not image.is_dynamic
    scale, zero_point = image.quantization.per_tensor
    assert abs(scale - 1 / 128) < 1e-9 and zero_point == 127
    assert model.output_tensors()[0].type == "UINT8"


def test_op_versions_within_compiler_16(converted):
    _, result = converted
    for op in read_model(result.int8_path).operators():
        assert op.version <= rules.max_version(op.name), op


def test_metadata_embedded(converted, labels_file):
    _, result = converted
    for path in (result.int8_path, result.float_path):
        recorded = read_edgekit_metadata(read_model(path))
        assert recorded["task"] == "classification"
        assert recorded["labels"] == [f"thing{i}" for i in range(6)]
        assert recorded["input_size"] == [SIZE, SIZE]
        assert (recorded["mean"], recorded["std"]) == (127.0, 128.0)
        assert recorded["resize"] == "tflite-bilinear"
        assert recorded["calibration"].startswith("minmax (11 images")
        assert recorded["edgekit_version"]


def test_calibration_summary_counts_skipped(converted):
    _, result = converted
    c = result.calibration
    assert c["used"] == 11 and c["skipped"] == 1 and c["strata"] == {"a": 7, "b": 4}
    assert any("fewer than 100" in w for w in result.warnings)
    assert any("1 calibration files skipped" in w for w in result.warnings)


def _model_input(photo):
    from edgekit.calibration.data import Preprocess, prepare
    from edgekit.runtime.images import load_image

    pixels = prepare(load_image(photo), Preprocess((SIZE, SIZE), "tflite-bilinear", False))
    return ((pixels.astype(np.float32) - 127) / 128)[None]


def _float_scores(model, photo):
    return model.predict(_model_input(photo), verbose=0)[0]


def test_edgekit_run_top_class_matches_keras(converted, photos):
    """Through `edgekit run` (no flags: labels and preprocessing come from the metadata) the int8 model
    picks the float Keras model's class on every photo where the float answer is clear."""

    model, result = converted
    paths = photo_paths(photos)
    document = run_json(result.int8_path, paths, device="cpu", top_k=1)
    float_document = run_json(result.float_path, paths, device="cpu", top_k=1)
    clear = 0
    for path, found, found_float in zip(paths, document["results"], float_document["results"]):
        scores = _float_scores(model, path)
        first, second = np.sort(scores)[::-1][:2]
        assert found_float["classes"][0]["id"] == int(np.argmax(scores))
        if first - second > 0.1:
            clear += 1
            assert found["classes"][0]["id"] == int(np.argmax(scores)), path
            assert found["classes"][0]["label"] == f"thing{int(np.argmax(scores))}"
    assert clear >= 6


def test_report_written(converted):
    _, result = converted
    report = json.loads(open(result.report_json).read())
    assert report["method"] == "minmax" and report["bias_correction"] is False and report["parameters"]["fits"]
    assert {o["op"] for o in report["ops"]} >= {"CONV_2D", "DEPTHWISE_CONV_2D", "SOFTMAX"}
    errors = {r["name"]: r for r in report["layer_errors"]}
    assert len(errors) >= 4 and all(r["snr_db"] is None or r["snr_db"] > 5 for r in errors.values())
    html = open(result.report_html).read()
    assert "<svg" in html and "Where accuracy goes" in html
    assert "Calibration method <b>minmax</b>" in html and "on the CPU." in html  # no empty op list
    import re
    import xml.etree.ElementTree as ElementTree

    plots = re.findall(r"<svg.*?</svg>", html, re.S)
    assert len(plots) == 2
    for plot in plots:
        ElementTree.fromstring(plot)        # well-formed, so browsers draw it


def test_report_agreement_with_float(converted, photos):
    """The report's float-vs-int8 agreement on the calibration pictures is what `edgekit run` finds when it
    runs the float and int8 files on those photos, and its logit step is the int8 head's own."""

    _, result = converted
    found = json.loads(open(result.report_json).read())["agreement_with_float"]
    paths = photo_paths(photos)
    assert found["pictures"] == len(paths)
    int8 = run_json(result.int8_path, paths, device="cpu", top_k=1)["results"]
    floats = run_json(result.float_path, paths, device="cpu", top_k=1)["results"]
    same = [a["classes"][0]["id"] == b["classes"][0]["id"] for a, b in zip(int8, floats)]
    assert found["top1"] == pytest.approx(sum(same) / len(same))
    graph = read_model(result.int8_path).main
    softmax = next(op for op in graph.operators if op.name == "SOFTMAX")
    assert found["logit_step"] == pytest.approx(graph.tensors[softmax.inputs[0]].quantization.per_tensor[0])
    assert 0 <= found["top2_logits_within_one_step"] <= len(paths) and 0 <= found["mean_kl"] < 0.5
    assert "Agreement with the float model" in open(result.report_html).read()


def test_no_partial_files_left(converted):
    _, result = converted
    leftovers = [f for f in os.listdir(os.path.dirname(result.int8_path)) if f.endswith(".part") or f.startswith(".")]
    assert leftovers == []


def test_int8_io(photos, tmp_path):
    from edgekit.converters.api import convert

    result = convert(small_classifier(), str(photos), tmp_path, name="s8", io="int8", compile=False, report=False,
                     num_samples=4)
    image = read_model(result.int8_path).input_tensors()[0]
    assert image.type == "INT8" and image.quantization.per_tensor == (1 / 128, -1)


def test_interrupted_conversion_leaves_no_tflite(photos, tmp_path, monkeypatch):
    from edgekit.converters import api, quantize

    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(quantize, "quantize", interrupted)
    with pytest.raises(KeyboardInterrupt):
        api.convert(small_classifier(), str(photos), tmp_path, name="x", compile=False, num_samples=4)
    assert [f for f in os.listdir(tmp_path)] == []


def test_hard_swish_warned_or_refused(photos, tmp_path):
    from edgekit.converters.api import convert
    from edgekit.converters.verify import ConversionCheckError

    model = small_classifier(activation="hard_swish")
    result = convert(model, str(photos), tmp_path, name="hs", compile=False, report=False, num_samples=4)
    assert any("HARD_SWISH" in w and "CPU" in w for w in result.warnings)
    with pytest.raises(ConversionCheckError, match="HARD_SWISH.*--strict"):
        convert(model, str(photos), tmp_path / "strict", name="hs", compile=False, report=False, num_samples=4,
                strict=True)
    assert not (tmp_path / "strict" / "hs_int8.tflite").exists()


def test_float_tensor_fails_naming_the_op(converted):
    """The check that guards against 'Model not quantized', run on a float model."""
    from edgekit.converters.verify import ConversionCheckError, verify

    _, result = converted
    with pytest.raises(ConversionCheckError, match=r"op 0 CONV_2D uses tensor .* FLOAT32, not 8-bit"):
        verify(read_model(result.float_path))


def test_too_new_op_version_fails_naming_the_op(converted, monkeypatch):
    from edgekit.converters.verify import ConversionCheckError, verify

    _, result = converted
    monkeypatch.setitem(rules.COMPILER16_MAX_VERSION, "DEPTHWISE_CONV_2D", 1)
    with pytest.raises(ConversionCheckError, match=r"DEPTHWISE_CONV_2D came out as version 3, but edgetpu_compiler "
                                                   r"16 knows it up to version 1"):
        verify(read_model(result.int8_path))


def test_calibrate_edit_quantize_path(converted, tmp_path):
    """Smoke test of the private TensorFlow API behind the range methods: an edited range shows up
    exactly in the quantized scale, an unedited one equals what convert() records."""
    from edgekit.converters import keras_export, quantize

    model, _ = converted
    saved = keras_export.export_fixed_batch(model, str(tmp_path / "sm"), (SIZE, SIZE, 3))
    rng = np.random.default_rng(0)
    batches = quantize.to_model_input(rng.integers(0, 256, (4, SIZE, SIZE, 3), dtype=np.uint8), 127, 128)
    calibrated = quantize.calibrate(saved, batches)
    recorded = quantize.recorded_ranges(read_model(calibrated))
    conv = next(i for i, r in recorded.items() if "conv2d" in r.name and "Relu6" in r.name)
    low, high = recorded[conv].low, recorded[conv].high
    plain = read_model(quantize.quantize(calibrated))
    edited = read_model(quantize.quantize(quantize.set_ranges(calibrated, {conv: (low, 0.9 * high)})))
    name = recorded[conv].name
    plain_scale, edited_scale = (next(t for t in m.main.tensors if t.name == name).quantization.per_tensor[0]
                                 for m in (plain, edited))
    assert abs(plain_scale - (high - low) / 255) < 1e-6
    assert abs(edited_scale / plain_scale - 0.9) < 1e-3


def test_importing_edgekit_does_not_import_tensorflow():
    import subprocess
    import sys

    code = "import sys, edgekit, edgekit.cli; assert callable(edgekit.__getattr__); print('tensorflow' in sys.modules)"
    assert subprocess.run([sys.executable, "-c", code], capture_output=True, text=True).stdout.strip() == "False"


def passes_forbidden(monkeypatch):
    """Make a calibration pass or a histogram pass fail the test: what a cache hit must avoid."""
    from edgekit.calibration import ranges
    from edgekit.converters import quantize

    def no_pass(*args, **kwargs):
        raise AssertionError("a pass over the calibration pictures ran despite the cache")

    monkeypatch.setattr(quantize, "calibrate", no_pass)
    monkeypatch.setattr(ranges, "collect", no_pass)


def test_second_method_reuses_calibration_and_statistics(converted, photos, tmp_path, monkeypatch):
    """One CalibrationCache kept across two conversions: the second (another method) runs no pass at all."""
    from edgekit.calibration.cache import CalibrationCache
    from edgekit.converters.api import convert

    model, _ = converted
    cache = CalibrationCache(tmp_path / "c")
    first = convert(model, str(photos), tmp_path, name="first", method="percentile", compile=False, cache=cache)
    assert json.loads(open(first.report_json).read())["statistics_cached"] is False
    passes_forbidden(monkeypatch)
    result = convert(model, str(photos), tmp_path, name="again", method="kl", compile=False, cache=cache)
    assert result.timings["calibrate"] < 0.05 and result.timings["statistics"] < 0.05
    assert json.loads(open(result.report_json).read())["statistics_cached"] is True
    assert read_edgekit_metadata(read_model(result.int8_path))["calibration"].startswith("kl + bias correction (11")
    cached = sorted(os.listdir(tmp_path / "c"))
    assert [f.split("-")[0] for f in cached] == ["calibrated", "stats"]


def test_without_a_cache_each_conversion_calibrates(converted, photos, tmp_path):
    """No cache object and no cache_dir: nothing is kept between calls (no module-level cache)."""
    from edgekit.converters.api import convert

    model, _ = converted
    convert(model, str(photos), tmp_path / "a", name="n", method="percentile", compile=False, report=False)
    result = convert(model, str(photos), tmp_path / "b", name="n", method="percentile", compile=False)
    assert json.loads(open(result.report_json).read())["statistics_cached"] is False


def test_disk_cache_serves_a_new_process(converted, photos, tmp_path, monkeypatch):
    """cache_dir (`--cache-dir`): a later conversion with nothing in memory finds both passes on disk."""
    from edgekit.converters import api

    model, _ = converted
    api.convert(model, str(photos), tmp_path / "a", name="d", compile=False, cache_dir=tmp_path / "c", report=False)
    passes_forbidden(monkeypatch)
    result = api.convert(model, str(photos), tmp_path / "b", name="d", method="kl", compile=False,
                         cache_dir=tmp_path / "c")
    assert result.method == "kl" and json.loads(open(result.report_json).read())["statistics_cached"] is True


def test_cache_and_a_different_cache_dir_are_refused(photos, tmp_path):
    from edgekit.calibration.cache import CalibrationCache
    from edgekit.converters.api import convert

    with pytest.raises(ValueError, match="differs from the cache's folder"):
        convert(small_classifier(), str(photos), tmp_path, cache=CalibrationCache(tmp_path / "a"),
                cache_dir=str(tmp_path / "b"))


def test_leading_rescaling_folds_into_the_input_quantization(photos, tmp_path):
    """A model that takes raw pixels and normalises them itself (as the zoo's do) converts to the same
    raw-pixel uint8 input, with no rescaling op left for the Edge TPU."""
    from edgekit.converters.api import convert

    keras.utils.set_random_seed(3)
    pixels = keras.Input((SIZE, SIZE, 3), batch_size=1)
    x = keras.layers.Rescaling(1 / 128, offset=-127 / 128, name="normalize")(pixels)
    x = keras.layers.Conv2D(8, 3, strides=2, padding="same", activation="relu6")(x)
    x = keras.layers.GlobalAveragePooling2D()(x)
    model = keras.Model(pixels, keras.layers.Softmax()(keras.layers.Dense(4)(x)))
    model.edgekit_raw_pixels = True
    result = convert(model, str(photos), tmp_path, name="raw", compile=False, report=False, mean=0.0, std=1.0)
    converted = read_model(result.int8_path)
    assert converted.input_tensors()[0].quantization.per_tensor == (1 / 128, 127)
    assert [op.name for op in converted.main.operators][:2] == ["QUANTIZE", "CONV_2D"]
    assert (result.metadata["mean"], result.metadata["std"]) == (127.0, 128.0)


@pytest.fixture(scope="session")
def lite0(photos, tmp_path_factory):
    """EfficientNet-Lite0 with ImageNet weights from the zoo, converted once (skipped until the zoo builds it)."""
    from edgekit.converters import api, keras_export
    from edgekit.errors import EdgekitError

    try:
        keras_export.load_keras("efficientnet-lite0", weights="imagenet")
    except EdgekitError as e:
        pytest.skip(f"the zoo cannot build efficientnet-lite0 with ImageNet weights yet: {e}")
    out = tmp_path_factory.mktemp("lite0")
    # By name, as a user would: the zoo's ImageNet labels get embedded (Coral's imagenet_labels.txt has 1001
    # lines, background first, against the checkpoint's 1000 classes).
    return api.convert("efficientnet-lite0", str(photos), out, weights="imagenet", compile=False)


@pytest.mark.slow
def test_lite0_round_trip_on_real_photos(lite0, photos):
    """Raw pixels in, the float model's own answers out (the ImageNet checkpoint gives cat -> Egyptian cat 285,
    parrot -> macaw 88, grace_hopper -> military uniform 652), through `edgekit run` with no flags."""

    model = read_model(lite0.int8_path)
    assert model.input_tensors()[0].quantization.per_tensor == (1 / 128, 127)
    assert lite0.check["cpu"] == 0, lite0.check
    expected = {"cat.bmp": 285, "parrot.jpg": 88, "grace_hopper.bmp": 652}
    paths = [str(photos / "a" / name) for name in expected if (photos / "a" / name).exists()]
    document = run_json(lite0.int8_path, paths, device="cpu", top_k=3)
    for path, result in zip(paths, document["results"]):
        assert expected[os.path.basename(path)] in [c["id"] for c in result["classes"]], result
    labels = read_edgekit_metadata(model).get("labels")
    if labels:
        assert len(labels) == 1000 and "macaw" in labels[88].lower()


def test_bias_correction_moves_int8_towards_float(converted, photos, tmp_path):
    """Corrected biases differ from the plain ones and the int8 outputs get no farther from the float model's
    on the calibration photos."""
    from ai_edge_litert.interpreter import Interpreter

    from edgekit.converters.api import convert

    model, plain = converted
    fixed = convert(model, str(photos), tmp_path, name="bc", compile=False, report=False, method="minmax",
                    bias_correction=True)
    assert fixed.timings["bias_correction"] > 0 and "bias correction" in fixed.metadata["calibration"]
    biases = [{t.name: t.numpy().tolist() for t in read_model(path).main.tensors if t.type == "INT32" and
               t.is_constant and len(t.shape) == 1} for path in (plain.int8_path, fixed.int8_path)]
    assert biases[0] != biases[1]
    errors = []
    for path in (plain.int8_path, fixed.int8_path):
        interpreter = Interpreter(model_path=path)
        interpreter.allocate_tensors()
        inp, out = interpreter.get_input_details()[0], interpreter.get_output_details()[0]
        scale, zero_point = out["quantization"]
        total = 0.0
        for photo in photo_paths(photos):
            model_input = _model_input(photo)
            interpreter.set_tensor(inp["index"], np.round(model_input * 128 + 127).astype(np.uint8))
            interpreter.invoke()
            q = scale * (interpreter.get_tensor(out["index"])[0].astype(np.float64) - zero_point)
            total += float(np.abs(q - model.predict(model_input, verbose=0)[0]).sum())
        errors.append(total)
    assert errors[1] <= errors[0] * 1.05, errors


def test_eval_float_and_int8_side_by_side(converted, photos, tmp_path):
    """The float baseline (--float) and the int8 model in one `edgekit eval`: labels from the metadata, class
    folders named by label, top-1 per model equal to `edgekit run`'s answers, agreement against the float."""
    from edgekit.evaluation import evaluate

    model, result = converted
    data = tmp_path / "data"
    paths = photo_paths(photos)
    truth = {}
    for path in paths:
        label = f"thing{int(np.argmax(_float_scores(model, path)))}"   # the float model's own answer
        os.makedirs(data / label, exist_ok=True)
        os.symlink(path, data / label / os.path.basename(path))
        truth[os.path.basename(path)] = label
    report = evaluate.evaluate([result.float_path, result.int8_path], data, reference=result.float_path,
                               device="cpu", progress=False)
    float_row, int8_row = report.models
    assert float_row.top1 == 1.0 and float_row.agreement == 1.0
    int8_answers = run_json(result.int8_path, paths, device="cpu", top_k=1)["results"]
    right = sum(found["classes"][0]["label"] == truth[os.path.basename(found["image"])] for found in int8_answers)
    assert int8_row.top1 == pytest.approx(right / len(paths)) and int8_row.agreement == int8_row.top1
    assert int8_row.top1 >= 0.75

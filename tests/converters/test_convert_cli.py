"""`edgekit convert` as a user types it: the summary, --json, and every bad input of the issue (one line on
stderr, a non-zero exit, no traceback, nothing half-written)."""

import json
import os
import zipfile

import numpy as np
import pytest
from cli_runner import edgekit
from PIL import Image

keras = pytest.importorskip("keras")

SIZE = 32


def assert_one_line_error(result, starts, code):
    assert result.exit_code == code, result.output
    lines = result.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"edgekit: error: {starts}"), result.stderr
    assert "Traceback" not in result.stderr


def tiny_model(activation="relu6"):
    keras.utils.set_random_seed(1)
    images = keras.Input((SIZE, SIZE, 3), batch_size=1)
    x = keras.layers.Conv2D(8, 3, strides=2, padding="same", activation=activation)(images)
    x = keras.layers.GlobalAveragePooling2D()(x)
    return keras.Model(images, keras.layers.Softmax()(keras.layers.Dense(4)(x)))


@pytest.fixture(scope="session")
def files(tmp_path_factory):
    """A Keras file, a hard-swish one, one with an unknown custom layer, a corrupt one; picture folders."""
    root = tmp_path_factory.mktemp("cli")
    tiny_model().save(root / "tiny.keras")
    tiny_model("hard_swish").save(root / "hswish.keras")
    with zipfile.ZipFile(root / "tiny.keras") as z:
        parts = {n: z.read(n) for n in z.namelist()}
    config = json.loads(parts["config.json"])
    layer = config["config"]["layers"][1]
    layer.update(module="my_project.layers", class_name="FancyConv", registered_name="my_project>FancyConv")
    parts["config.json"] = json.dumps(config).encode()
    with zipfile.ZipFile(root / "custom.keras", "w") as z:
        for name, data in parts.items():
            z.writestr(name, data)
    (root / "corrupt.keras").write_bytes(b"PK\x03\x04 this is not a whole zip archive")
    (root / "notes.txt.keras").write_text("hello")
    pictures = root / "pictures"
    rng = np.random.default_rng(0)
    for k in range(6):
        os.makedirs(pictures / f"c{k % 2}", exist_ok=True)
        Image.fromarray(rng.integers(0, 256, (40, 50, 3), dtype=np.uint8)).save(pictures / f"c{k % 2}" / f"{k}.png")
    (root / "empty").mkdir()
    junk = root / "junk"
    junk.mkdir()
    for k in range(3):
        (junk / f"{k}.jpg").write_bytes(b"\xff\xd8 not really a jpeg")
    return root


def test_convert_prints_where_files_went(files, tmp_path):
    result = edgekit("convert", files / "tiny.keras", "--calib", files / "pictures", "--out", tmp_path, "--float",
                     "--no-compile")
    assert result.exit_code == 0, result.stderr
    assert f"int8 model     {tmp_path / 'tiny_int8.tflite'}" in result.stdout
    assert f"float model    {tmp_path / 'tiny_float.tflite'}" in result.stdout
    assert "fewer than 100" in result.stderr and result.stderr.startswith("edgekit: warning: ")
    assert "calibration    mse + bias correction, 6 images" in result.stdout
    report = json.loads((tmp_path / "tiny_report.json").read_text())
    assert report["bias_correction"] is True
    assert "Calibration method <b>mse + bias correction</b>" in (tmp_path / "tiny_report.html").read_text()
    found = report["agreement_with_float"]
    assert (f"vs float       same top-1 class on {100 * found['top1']:.1f}% of 6 calibration pictures, "
            f"mean KL {found['mean_kl']:.3f}") in result.stdout
    assert sorted(os.listdir(tmp_path)) == ["tiny_float.tflite", "tiny_int8.tflite", "tiny_report.html",
                                            "tiny_report.json"]


def test_convert_json(files, tmp_path):
    result = edgekit("convert", files / "tiny.keras", "--calib", str(files / "pictures" / "*" / "*.png"), "--out",
                     tmp_path, "--json", "--calibration", "percentile", "--num-samples", "4", "--io", "int8")
    assert result.exit_code == 0, result.stderr
    document = json.loads(result.stdout)
    assert document["method"] == "percentile" and document["calibration"]["used"] == 4
    assert document["agreement"]["pictures"] == 4 and 0.0 <= document["agreement"]["top1"] <= 1.0
    assert document["calibration"]["kind"] == "glob" and document["calibration"]["strata"] == {"c0": 2, "c1": 2}
    assert document["int8_path"] == str(tmp_path / "tiny_int8.tflite")
    assert document["check"]["cpu"] == 0 and document["compile"]["ran"] is False
    assert "edgetpu_compiler" in document["compile"]["why"]


def test_hard_swish_warns_naming_cpu_ops_and_strict_refuses(files, tmp_path):
    result = edgekit("convert", files / "hswish.keras", "--calib", files / "pictures", "--out", tmp_path / "a",
                     "--no-compile")
    assert result.exit_code == 0
    assert "ops will run on the CPU, not the Edge TPU: HARD_SWISH" in result.stderr
    result = edgekit("convert", files / "hswish.keras", "--calib", files / "pictures", "--out", tmp_path / "b",
                     "--strict", "--no-compile")
    assert_one_line_error(result, "5 ops will run on the CPU, not the Edge TPU: HARD_SWISH (first: op 2 HARD_SWISH", 1)
    assert "--strict" in result.stderr
    assert os.listdir(tmp_path / "b") == []


@pytest.mark.parametrize("calib, message, code", [
    ("missing", "{root}/missing: no such calibration folder, file or pattern", 2),
    ("empty", "{root}/empty: no images found (folder)", 2),
    ("junk", "{root}/junk: none of the 3 calibration files could be read (first: {root}/junk/", 2),
    ("nothing-*.jpg", "{root}/nothing-*.jpg: no images found (glob)", 2),
])
def test_bad_calibration_source(files, tmp_path, calib, message, code):
    result = edgekit("convert", files / "tiny.keras", "--calib", files / calib, "--out", tmp_path / "out")
    assert_one_line_error(result, message.format(root=files), code)
    assert os.listdir(tmp_path / "out") == []


@pytest.mark.parametrize("model, message", [
    ("missing.keras", "{root}/missing.keras: no such model file or folder, and not a zoo model name"),
    ("corrupt.keras", "{root}/corrupt.keras: corrupt .keras file (not a zip archive)"),
    ("notes.txt.keras", "{root}/notes.txt.keras: corrupt .keras file (not a zip archive)"),
    ("custom.keras", "{root}/custom.keras: the model uses 'FancyConv', which Keras does not know"),
    ("pictures", "{root}/pictures: a folder without saved_model.pb is not a SavedModel"),
])
def test_bad_model(files, tmp_path, model, message):
    result = edgekit("convert", files / model, "--calib", files / "pictures", "--out", tmp_path / "out")
    assert_one_line_error(result, message.format(root=files), 2)
    assert os.listdir(tmp_path / "out") == []


def test_output_folder_not_writable(files, tmp_path):
    blocker = tmp_path / "a-file"
    blocker.write_text("x")
    result = edgekit("convert", files / "tiny.keras", "--calib", files / "pictures", "--out", blocker / "out")
    assert_one_line_error(result, f"{blocker / 'out'}: cannot write the output folder", 2)
    result = edgekit("convert", files / "tiny.keras", "--calib", files / "pictures", "--out", blocker)
    assert_one_line_error(result, f"{blocker}: exists and is not a folder", 2)


def test_bad_options(files, tmp_path):
    result = edgekit("convert", files / "tiny.keras", "--calib", files / "pictures", "--out", tmp_path,
                     "--calibration", "best")
    assert result.exit_code == 2 and "Invalid value for '--calibration'" in result.stderr
    result = edgekit("convert", files / "tiny.keras", "--calib", files / "pictures", "--out", tmp_path,
                     "--num-samples", "0")
    assert result.exit_code == 2 and "--num-samples" in result.stderr


def test_compiles_when_the_compiler_is_there(files, tmp_path, monkeypatch):
    """With edgetpu_compiler present (here the tests' stand-in, which copies the model) the compiled twin lands
    beside the int8 model with a metadata sidecar naming its CPU twin, in case the compiler drops the entry."""
    from pathlib import Path

    standin = Path(__file__).resolve().parent.parent / "compiler" / "standin" / "edgetpu_compiler"
    if not standin.exists():
        pytest.skip("the compiler stand-in is not there")
    monkeypatch.setenv("EDGETPU_COMPILER", str(standin))
    result = edgekit("convert", files / "tiny.keras", "--calib", files / "pictures", "--out", tmp_path, "--json")
    assert result.exit_code == 0, result.stderr
    document = json.loads(result.stdout)
    assert document["compiled_path"] == str(tmp_path / "tiny_int8_edgetpu.tflite")
    sidecar = json.loads((tmp_path / "tiny_int8_edgetpu.edgekit.json").read_text())
    assert sidecar["cpu_model"] == "tiny_int8.tflite" and sidecar["task"] == "classification"


def test_compiler_failure_is_a_warning(files, tmp_path, monkeypatch):
    from pathlib import Path

    standin = Path(__file__).resolve().parent.parent / "compiler" / "standin" / "edgetpu_compiler"
    if not standin.exists():
        pytest.skip("the compiler stand-in is not there")
    monkeypatch.setenv("EDGETPU_COMPILER", str(standin))
    monkeypatch.setenv("EDGETPU_STANDIN_MODE", "internal")
    result = edgekit("convert", files / "tiny.keras", "--calib", files / "pictures", "--out", tmp_path)
    assert result.exit_code == 0
    assert "edgekit: warning: edgetpu_compiler failed" in result.stderr
    assert (tmp_path / "tiny_int8.tflite").exists() and not (tmp_path / "tiny_int8_edgetpu.tflite").exists()


def test_savedmodel_folder(files, tmp_path):
    """A SavedModel folder (serving_default taking one fixed-size image) converts like a Keras file."""
    import tensorflow as tf

    model = tiny_model()
    folder = tmp_path / "saved"
    spec = tf.TensorSpec([1, SIZE, SIZE, 3], tf.float32, name="image")
    module = tf.Module()
    module.model = model
    module.serve = tf.function(lambda image: {"probabilities": model(image)}, input_signature=[spec])
    tf.saved_model.save(module, str(folder), signatures={"serving_default": module.serve})
    result = edgekit("convert", folder, "--calib", files / "pictures", "--out", tmp_path / "out", "--no-compile",
                     "--json")
    assert result.exit_code == 0, result.stderr
    document = json.loads(result.stdout)
    assert document["int8_path"].endswith("saved_int8.tflite") and document["check"]["cpu"] == 0

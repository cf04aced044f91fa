"""Every bad input of issue 3 through the command line: one exact line on stderr, its exit code, no traceback."""

import json
import subprocess
import sys

import pytest
import tpu_models
from click.testing import CliRunner

from edgekit.cli import cli


def run(*args):
    result = CliRunner().invoke(cli, [str(a) for a in args])
    assert "Traceback" not in result.stdout + result.stderr
    assert result.exception is None or isinstance(result.exception, SystemExit)
    return result


def one_line(result):
    (line,) = result.stderr.splitlines()
    assert line.startswith("edgekit: error: ")
    return line[len("edgekit: error: "):]


@pytest.fixture
def bad_files(tmp_path, coral):
    source = coral("mobilenet_v1_0.25_128_quant.tflite").read_bytes()
    files = {"text": tmp_path / "notes.tflite", "truncated": tmp_path / "cut.tflite",
             "corrupt": tmp_path / "corrupt.tflite", "empty": tmp_path / "empty.tflite"}
    files["text"].write_text("not a model\n")
    files["truncated"].write_bytes(source[:3000])
    files["corrupt"].write_bytes(b"\xff\xff\x00\x00" + source[4:])
    files["empty"].write_bytes(b"")
    return files


@pytest.mark.parametrize("command", ["check", "inspect", "compile"])
def test_unreadable_models(command, bad_files, tmp_path):
    expected = {
        "text": "not a TFLite model (no 'TFL3' identifier); give a .tflite file written by the TFLite converter",
        "truncated": "damaged or truncated TFLite model (offset 480888 is outside the 3000-byte buffer); "
                     "convert or download it again",
        "corrupt": "damaged or truncated TFLite model (offset ",
        "empty": "the file is empty, not a TFLite model",
    }
    for key, path in bad_files.items():
        extra = ["-o", tmp_path / "out"] if command == "compile" else []
        result = run(command, path, *extra)
        assert result.exit_code == 2
        assert one_line(result).startswith(f"{path}: {expected[key]}")
    assert not (tmp_path / "out").exists() or list((tmp_path / "out").iterdir()) == []


@pytest.mark.parametrize("command", ["check", "inspect", "compile"])
def test_missing_file_and_folder(command, tmp_path):
    result = run(command, tmp_path / "nope.tflite")
    assert result.exit_code == 2 and one_line(result) == f"{tmp_path / 'nope.tflite'}: no such file"
    result = run(command, tmp_path)
    assert result.exit_code == 2 and one_line(result) == f"{tmp_path}: is a folder, not a .tflite model file"


def test_float_model(coral, tmp_path):
    path = tpu_models.all_float(coral("tools/split_concat.tflite"), tmp_path / "float.tflite")
    result = run("check", path)
    assert result.exit_code == 2
    assert one_line(result).startswith(f"{path}: model not quantized: 3 ops work on float "
                                       "(CONCATENATION x2, SPLIT); convert with full-integer quantization")


def test_dynamic_batch(coral, tmp_path):
    path = tpu_models.dynamic_batch(coral("mobilenet_v1_0.25_128_quant.tflite"), tmp_path / "dyn.tflite")
    result = run("check", path)
    assert result.exit_code == 2
    assert one_line(result) == (f"{path}: tensor 'input' has a dynamic shape [-1, 128, 128, 3]; fix the batch "
                                "to 1: convert from a model with a static input shape like [1, H, W, 3]")
    document = json.loads(run("check", path, "--json").stdout)
    assert document["summary"]["fatal"]["kind"] == "dynamic"


def test_too_new_op_version(coral, tmp_path):
    path = tpu_models.op_version(coral("mobilenet_v1_0.25_128_quant.tflite"), tmp_path / "v6.tflite", "CONV_2D", 6)
    result = run("check", path)
    assert result.exit_code == 2
    assert one_line(result).startswith(f"{path}: op 0 CONV_2D is version 6, but compiler 16 knows it up to "
                                       "version 5; re-convert with TensorFlow 2.5")


def test_compiled_model_given_to_check(coral):
    path = coral("tools/split_concat_edgetpu.tflite")
    result = run("check", path)
    assert result.exit_code == 2
    assert one_line(result) == (f"{path}: already compiled for the Edge TPU (it has edgetpu-custom-op); run "
                                f"`edgekit inspect {path}`, or check the CPU model it came from")


def test_cpu_model_given_to_inspect(coral):
    path = coral("tools/split_concat.tflite")
    result = run("inspect", path)
    assert result.exit_code == 1
    assert one_line(result) == (f"{path} is not compiled for the Edge TPU (it has no edgetpu-custom-op); "
                                f"run `edgekit check {path}` to predict what the compiler will map")
    assert json.loads(run("inspect", path, "--json").stdout)["compiled"] is False


def test_check_outputs_and_exit_codes(coral):
    path = coral("deeplabv3_mnv2_dm05_pascal_quant.tflite")
    text = run("check", path)
    assert text.exit_code == 0
    assert "Operator                       Count      Status" in text.stdout
    assert "cut: op 64 RESIZE_BILINEAR" in text.stdout
    assert run("check", path, "--strict").exit_code == 1
    assert run("check", coral("mobilenet_v1_0.25_128_quant.tflite"), "--strict").exit_code == 0
    document = json.loads(run("check", path, "--json").stdout)
    assert set(document["ops"][0]) >= {"index", "op", "version", "status", "reason"}
    assert document["summary"]["cpu"] == 8 and document["summary"]["cut"]["index"] == 64


def test_inspect_json(coral):
    document = json.loads(run("inspect", coral("mobilenet_v2_1.0_224_quant_edgetpu.tflite"), "--json").stdout)
    executables = document["custom_ops"][0]["packages"][0]["executables"]
    assert {x["type"] for x in executables} == {"EXECUTION_ONLY", "PARAMETER_CACHING"}
    assert document["summary"]["cached_bytes"] == 3900864


@pytest.mark.parametrize("command", ["check", "inspect", "compile"])
def test_help_has_an_example(command):
    result = run(command, "--help")
    assert result.exit_code == 0 and "Example:" in result.stdout and f"edgekit {command} " in result.stdout


def test_real_entry_point_has_no_traceback(tmp_path):
    (tmp_path / "x.tflite").write_text("nope")
    done = subprocess.run([sys.executable, "-m", "edgekit", "check", str(tmp_path / "x.tflite")],
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 2 and done.stderr.count("\n") == 1 and "Traceback" not in done.stderr

"""`edgekit compile` end to end with tests/compiler/standin/edgetpu_compiler, a STAND-IN put on PATH.

The stand-in copies each model to <name>_edgetpu.tflite and prints compiler 16's format; its
EDGETPU_STANDIN_MODE picks a failure to imitate.
"""

import json
import os
from pathlib import Path

import pytest
from click.testing import CliRunner

from edgekit.cli import cli
from edgekit.compiler import compiler

STANDIN = Path(__file__).parent / "standin"
ROWS = "SPLIT:1:Mapped to Edge TPU;CONCATENATION:2:Mapped to Edge TPU"


def run(args, **env):
    base = {"PATH": f"{STANDIN}{os.pathsep}{os.environ['PATH']}", "EDGETPU_COMPILER": None}
    result = CliRunner().invoke(cli, args, env={**base, **env})
    assert "Traceback" not in result.output + result.stderr
    return result


def leftovers(folder):
    return [p.name for p in Path(folder).iterdir() if p.name.startswith(".edgekit")]


def test_compiles_with_the_standin(coral, tmp_path):
    argv = tmp_path / "argv.json"
    out = tmp_path / "out"
    result = run(["compile", str(coral("tools/split_concat.tflite")), "-o", str(out), "--min-runtime", "13",
                  "--search-delegate", "--step", "5", "--intermediate", "a,b", "--timeout", "60", "--json"],
                 EDGETPU_STANDIN_ROWS=ROWS, EDGETPU_STANDIN_ARGV=str(argv))
    assert result.exit_code == 0, result.stderr
    document = json.loads(result.stdout)
    assert document["compiled"] and document["outputs"] == [str(out / "split_concat_edgetpu.tflite")]
    assert (out / "split_concat_edgetpu.log").exists() and leftovers(out) == []
    assert document["models"][0]["output_model"] == str(out / "split_concat_edgetpu.tflite")
    assert list(document["disagreements"].values()) == [[]]
    args = json.loads(argv.read_text())
    for flag in (["--min_runtime_version", "13"], ["--delegate_search_step", "5"],
                 ["--intermediate_tensors", "a,b"], ["--timeout_sec", "60"]):
        assert args[args.index(flag[0]):args.index(flag[0]) + 2] == flag
    assert "--search_delegate" in args and "--show_operations" in args


def test_cocompiles_and_reports_disagreement(coral, tmp_path):
    models = [str(coral("tools/split_concat.tflite")), str(coral("mobilenet_v1_0.25_128_quant.tflite"))]
    result = run(["compile", *models, "-o", str(tmp_path)],
                 EDGETPU_STANDIN_ROWS="SPLIT:1:Mapped to Edge TPU;CONCATENATION:2:Operation not supported")
    assert result.exit_code == 0, result.stderr
    assert sorted(p.name for p in tmp_path.glob("*.tflite")) == ["mobilenet_v1_0.25_128_quant_edgetpu.tflite",
                                                                 "split_concat_edgetpu.tflite"]
    assert "CONCATENATION: check predicted 0 on the CPU, the compiler left 2" in result.stdout


@pytest.mark.parametrize("mode, words", [
    ("parse", "Model could not be parsed (Didn't find op for builtin opcode 'CONV_2D' version '6')"),
    ("internal", "Internal compiler error. Aborting!"),
    ("activations", "large activation tensors in model; retry with --search-delegate"),
    ("dynamic", "static-sized tensors; fix the batch to 1"),
    ("silent", "Compilation failed!")])
def test_failures_exit_1_with_reason_and_fix(coral, tmp_path, mode, words):
    result = run(["compile", str(coral("tools/split_concat.tflite")), "-o", str(tmp_path)],
                 EDGETPU_STANDIN_MODE=mode)
    assert result.exit_code == 1
    (line,) = result.stderr.splitlines()
    assert line.startswith("edgekit: error: ") and "edgetpu_compiler failed: " in line and words in line
    assert list(tmp_path.iterdir()) == []


def test_timeout_stops_the_compiler(coral, tmp_path, monkeypatch):
    monkeypatch.setattr(compiler, "GRACE_SECONDS", 1)
    result = run(["compile", str(coral("tools/split_concat.tflite")), "-o", str(tmp_path), "--timeout", "1"],
                 EDGETPU_STANDIN_MODE="hang")
    assert result.exit_code == 1 and "did not finish within 2 s" in result.stderr
    assert list(tmp_path.iterdir()) == []


def test_without_compiler_prints_prediction(coral, tmp_path):
    result = run(["compile", str(coral("tools/split_concat.tflite")), "-o", str(tmp_path)], PATH=str(tmp_path))
    assert result.exit_code == 3
    (line,) = result.stderr.splitlines()
    assert "edgetpu_compiler was not found" in line and "edgetpu-compiler" in line and "container" in line
    assert "Predicted by edgekit check" in result.stdout and "SPLIT" in result.stdout


def test_environment_variable_wins(coral, tmp_path):
    result = run(["compile", str(coral("tools/split_concat.tflite")), "-o", str(tmp_path)],
                 PATH=os.pathsep.join([str(tmp_path), "/usr/bin", "/bin"]),
                 EDGETPU_COMPILER=str(STANDIN / "edgetpu_compiler"), EDGETPU_STANDIN_ROWS=ROWS)
    assert result.exit_code == 0, result.stderr
    bad = run(["compile", str(coral("tools/split_concat.tflite"))], EDGETPU_COMPILER=str(tmp_path / "nope"))
    assert bad.exit_code == 3 and "is not an executable file" in bad.stderr


def test_non_x86_host_says_so():
    message = compiler.missing_message("aarch64", "Linux")
    assert "only on x86-64 Linux and this host is Linux aarch64" in message
    assert "x86-64 Linux" in compiler.missing_message("x86_64", "Darwin")


def test_unwritable_out_dir(coral, tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("x")
    result = run(["compile", str(coral("tools/split_concat.tflite")), "-o", str(blocker / "out")])
    assert result.exit_code == 1
    assert result.stderr.strip().startswith(f"edgekit: error: {blocker / 'out'}: cannot write the compiled model")


def test_compiled_model_is_refused(coral, tmp_path):
    path = coral("tools/split_concat_edgetpu.tflite")
    result = run(["compile", str(path), "-o", str(tmp_path)])
    assert result.exit_code == 2
    assert result.stderr.strip() == (f"edgekit: error: {path}: already compiled for the Edge TPU (it has "
                                     "edgetpu-custom-op); compile the CPU model it came from")


def test_same_name_twice(coral, tmp_path):
    path = str(coral("tools/split_concat.tflite"))
    result = run(["compile", path, path, "-o", str(tmp_path)])
    assert result.exit_code == 1 and "given twice" in result.stderr


def test_step_needs_search_delegate(coral):
    result = run(["compile", str(coral("tools/split_concat.tflite")), "--step", "3"])
    assert result.exit_code == 2 and "--step only works with --search-delegate" in result.stderr


def test_float_and_dynamic_models_are_refused_before_compiling(coral, tmp_path):
    import tpu_models

    float_model = tpu_models.all_float(coral("tools/split_concat.tflite"), tmp_path / "float.tflite")
    dynamic = tpu_models.dynamic_batch(coral("mobilenet_v1_0.25_128_quant.tflite"), tmp_path / "dyn.tflite")
    for path, words in ((float_model, "model not quantized: 3 ops work on float (CONCATENATION x2, SPLIT)"),
                        (dynamic, "has a dynamic shape [-1, 128, 128, 3]; fix the batch to 1")):
        argv = tmp_path / "argv.json"
        result = run(["compile", str(path), "-o", str(tmp_path / "out")], EDGETPU_STANDIN_ARGV=str(argv))
        assert result.exit_code == 2 and words in result.stderr and len(result.stderr.splitlines()) == 1
        assert not argv.exists()                        # the compiler never ran


def test_without_compiler_a_too_new_version_shows_the_fatal_prediction(coral, tmp_path):
    import tpu_models

    path = tpu_models.op_version(coral("mobilenet_v1_0.25_128_quant.tflite"), tmp_path / "v6.tflite", "CONV_2D", 6)
    result = run(["compile", str(path), "-o", str(tmp_path / "out")], PATH=str(tmp_path))
    assert result.exit_code == 3 and len(result.stderr.splitlines()) == 1
    assert "the compiler would fail: op 0 CONV_2D is version 6" in result.stdout
    assert "Didn't find op for builtin opcode 'CONV_2D' version '6'" in result.stdout


def test_parameters_streamed_off_chip_get_the_segments_advice(coral, tmp_path):
    """The compiler's log is the real measure of what fits the cache: when it streams parameters, compile
    says how many segments to try next and the command."""
    model = str(coral("mobilenet_v2_1.0_224_quant.tflite"))
    result = run(["compile", model, "-o", str(tmp_path), "--json"], EDGETPU_STANDIN_ROWS=ROWS,
                 EDGETPU_STANDIN_STREAMED="1.50MiB")
    assert result.exit_code == 0, result.stderr
    (advice,) = json.loads(result.stdout)["streaming"]
    assert advice["streamed"] == 1.5 * 1024 * 1024 and advice["segments"] == 2
    assert advice["command"] == f"edgekit compile {advice['model']} --segments 2"
    text = run(["compile", model, "-o", str(tmp_path / "again"), "--segments", "2"], EDGETPU_STANDIN_ROWS=ROWS,
               EDGETPU_STANDIN_STREAMED="512.00KiB")
    assert text.exit_code == 0, text.stderr
    assert ("512.00KiB of parameters stream off chip on every inference, which is much slower than the on-chip "
            "cache; spread them over 3 Edge TPUs: edgekit compile ") in text.stdout
    assert text.stdout.count("--segments 3") == 1
    quiet = run(["compile", model, "-o", str(tmp_path / "fits"), "--json"], EDGETPU_STANDIN_ROWS=ROWS)
    assert json.loads(quiet.stdout)["streaming"] == []

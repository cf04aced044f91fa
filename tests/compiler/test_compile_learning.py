"""`edgekit compile` and `edgekit check` on models for on-device learning: an imprinting model is compiled with
--intermediate_tensors at the tensor its L2_NORMALIZATION reads, so that its head stays on the CPU where
ImprintingEngine rewrites the weights; `check` predicts the same split and says why; an embedding extractor
maps whole.

The compiler is tests/compiler/standin/edgetpu_compiler (it records its argv). The imprinting models: Coral's
MobileNet v1 embedding extractor with a head added by `edgekit.tflite.heads` (seconds), and the
EfficientNet-Lite0 models `edgekit convert --embedding / --imprinting` writes (tests/learn_models.py, converted
once per session)."""

import json
import os
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner
from learn_models import embedding_model_path, imprinting_model_path

from edgekit.cli import cli
from edgekit.tflite import heads

__all__ = ["embedding_model_path", "imprinting_model_path"]     # session fixtures, used below by name

STANDIN = Path(__file__).parent / "standin"
EXTRACTOR = "mobilenet_v1_1.0_224_quant_embedding_extractor.tflite"
# Where Coral's extractor ends: its pooled features [1, 1, 1, 1024], which the L2_NORMALIZATION reads as is.
EXTRACTOR_OUTPUT = "MobilenetV1/Logits/AvgPool_1a/AvgPool"
HEAD_OPS = ["L2_NORMALIZATION", "CONV_2D", "MUL", "RESHAPE", "SOFTMAX"]
KEPT = "More than one subgraph is not supported"
# The compiler's table for the extractor with a head compiled with -i: the backbone mapped, the head not.
HEAD_ROWS = ";".join([f"{op}:1:{KEPT}" for op in HEAD_OPS]
                     + ["CONV_2D:14:Mapped to Edge TPU", "DEPTHWISE_CONV_2D:13:Mapped to Edge TPU",
                        "AVERAGE_POOL_2D:1:Mapped to Edge TPU"])


def run(args, **env):
    base = {"PATH": f"{STANDIN}{os.pathsep}{os.environ['PATH']}", "EDGETPU_COMPILER": None}
    env = {name: None if value is None else str(value) for name, value in env.items()}
    result = CliRunner().invoke(cli, [str(a) for a in args], env={**base, **env})
    assert "Traceback" not in result.output + result.stderr
    return result


@pytest.fixture
def imprinting(coral, tmp_path):
    """Coral's embedding extractor with pycoral's imprinting head for three classes."""
    weights = np.random.default_rng(0).normal(size=(3, 1024))
    path = tmp_path / "mobilenet_imprinting.tflite"
    path.write_bytes(heads.add_imprinting_head(coral(EXTRACTOR).read_bytes(), weights))
    return path


def flag_value(argv, flag):
    return argv[argv.index(flag) + 1] if flag in argv else None


def test_compile_ends_the_edge_tpu_part_where_the_head_begins(imprinting, tmp_path):
    argv = tmp_path / "argv.json"
    result = run(["compile", imprinting, "-o", tmp_path / "out"], EDGETPU_STANDIN_ARGV=argv,
                 EDGETPU_STANDIN_ROWS=HEAD_ROWS)
    assert result.exit_code == 0, result.stderr
    assert flag_value(json.loads(argv.read_text()), "--intermediate_tensors") == EXTRACTOR_OUTPUT
    assert (f"{imprinting}: its imprinting head stays on the CPU: added --intermediate_tensors {EXTRACTOR_OUTPUT} "
            "so that ImprintingEngine can rewrite its class weights") in result.stdout
    assert f"{imprinting}: the compiler agrees with edgekit check" in result.stdout
    assert (tmp_path / "out" / "mobilenet_imprinting_edgetpu.tflite").exists()


def test_compile_json_names_the_head(imprinting, tmp_path):
    argv = tmp_path / "argv.json"
    result = run(["compile", imprinting, "-o", tmp_path, "--intermediate", EXTRACTOR_OUTPUT, "--json"],
                 EDGETPU_STANDIN_ARGV=argv, EDGETPU_STANDIN_ROWS=HEAD_ROWS)
    assert result.exit_code == 0, result.stderr
    document = json.loads(result.stdout)
    assert document["learning_heads"] == {str(imprinting): {"kind": "imprinting", "tensor": EXTRACTOR_OUTPUT,
                                                            "ops": [28, 29, 30, 31, 32]}}
    assert document["disagreements"] == {str(imprinting): []}
    # Asked for by hand as well: named once.
    assert flag_value(json.loads(argv.read_text()), "--intermediate_tensors") == EXTRACTOR_OUTPUT


def test_an_extractor_compiles_whole(coral, tmp_path):
    argv = tmp_path / "argv.json"
    result = run(["compile", coral(EXTRACTOR), "-o", tmp_path, "--json"], EDGETPU_STANDIN_ARGV=argv)
    assert result.exit_code == 0, result.stderr
    assert "--intermediate_tensors" not in json.loads(argv.read_text())
    assert json.loads(result.stdout)["learning_heads"] == {}


def test_an_extractor_cut_from_an_imprinting_model_compiles_whole(imprinting, tmp_path):
    """What ImprintingEngine.serialize_extractor_model gives (the model up to its L2_NORMALIZATION) has no head
    to keep on the CPU."""
    from edgekit.tflite.graph_edit import GraphEditor

    editor = GraphEditor.from_bytes(imprinting.read_bytes())
    cut = tmp_path / "cut.tflite"
    cut.write_bytes(heads.extractor_of(editor, heads.read_imprinting_head(editor)).to_bytes())
    text = run(["check", cut, "--strict"])
    assert text.exit_code == 0 and "29 of 29 ops on the Edge TPU, 0 on the CPU" in text.stdout
    assert "head" not in text.stdout


def test_an_imprinting_model_is_compiled_on_its_own(imprinting, coral, tmp_path):
    argv = tmp_path / "argv.json"
    result = run(["compile", imprinting, coral("mobilenet_v1_0.25_128_quant.tflite"), "-o", tmp_path],
                 EDGETPU_STANDIN_ARGV=argv)
    assert result.exit_code == 2
    (line,) = result.stderr.splitlines()
    assert line.startswith(f"edgekit: error: {imprinting}: an imprinting model is compiled on its own")
    assert "compile it in a separate `edgekit compile`" in line and not argv.exists()


def test_without_the_compiler_the_prediction_says_why_the_head_stays(imprinting, tmp_path):
    result = run(["compile", imprinting, "-o", tmp_path / "out"], PATH=str(tmp_path))
    assert result.exit_code == 3
    assert (f"imprinting head: ops 28-32 (L2_NORMALIZATION -> CONV_2D -> MUL -> RESHAPE -> SOFTMAX) stay on the "
            f"CPU on purpose: `edgekit compile` ends the Edge TPU part at '{EXTRACTOR_OUTPUT}'") in result.stdout
    assert "28 of 33 ops on the Edge TPU, 5 on the CPU" in result.stdout


def test_check_predicts_the_converted_imprinting_model(imprinting_model_path):
    """Lite0 from `convert --imprinting`: the backbone whole on the Edge TPU, the head's five ops on the CPU,
    said once, nothing to fix, and --strict content (the head is there on purpose)."""
    text = run(["check", imprinting_model_path, "--strict"])
    assert text.exit_code == 0, text.output
    assert "63 of 68 ops on the Edge TPU, 5 on the CPU" in text.stdout
    assert ("imprinting head: ops 63-67 (L2_NORMALIZATION -> CONV_2D -> MUL -> RESHAPE -> SOFTMAX) stay on the CPU "
            "on purpose: `edgekit compile` ends the Edge TPU part at 'imprinting/embedding'") in text.stdout
    assert "cut:" not in text.stdout and "fixes:" not in text.stdout
    document = json.loads(run(["check", imprinting_model_path, "--json"]).stdout)
    cpu = [op for op in document["ops"] if op["status"] == "cpu"]
    assert [op["op"] for op in cpu] == HEAD_OPS and all(op["reason"] == KEPT for op in cpu)
    assert all("the imprinting head, on the CPU on purpose" in op["detail"] for op in cpu)
    assert document["summary"]["learning_head"] == {"kind": "imprinting", "tensor": "imprinting/embedding",
                                                    "ops": [63, 64, 65, 66, 67]}
    assert document["summary"]["cut"] is None and document["fixes"] == []


def test_check_maps_the_converted_extractor_whole(embedding_model_path, tmp_path):
    text = run(["check", embedding_model_path, "--strict"])
    assert text.exit_code == 0, text.output
    assert "62 of 62 ops on the Edge TPU, 0 on the CPU" in text.stdout and "head" not in text.stdout
    argv = tmp_path / "argv.json"
    result = run(["compile", embedding_model_path, "-o", tmp_path], EDGETPU_STANDIN_ARGV=argv)
    assert result.exit_code == 0, result.stderr
    assert "--intermediate_tensors" not in json.loads(argv.read_text())

"""`edgekit run`, `bench` and `doctor` as a user types them: results, JSON, and every bad input."""

import json
import os
import subprocess
import sys
from pathlib import Path

import click
import pytest
from cli_runner import edgekit
from PIL import Image

from edgekit.cli import COMMANDS, load_command
from model_edits import to_float

pytestmark = pytest.mark.usefixtures("no_edgetpu_library")

ROOT = Path(__file__).resolve().parent.parent


def run_json(*args):
    result = edgekit("run", *args, "--json")
    assert result.exit_code == 0, result.stderr
    return json.loads(result.stdout), result.stderr


def assert_one_line_error(result, expected, code=1):
    assert result.exit_code == code
    assert result.stderr == f"edgekit: error: {expected}\n"
    assert "Traceback" not in result.output


def test_classification_json_document(coral):
    document, _ = run_json(coral("mobilenet_v2_1.0_224_quant.tflite"), coral("cat.bmp"),
                           "--labels", coral("imagenet_labels.txt"), "--top-k", 3, "--device", "cpu")
    assert set(document) >= {"model", "device", "backend", "task", "results"}
    assert document["device"] == "cpu" and document["task"] == "classification"
    assert document["backend"].startswith("ai-edge-litert")
    [result] = document["results"]
    assert result["image"] == str(coral("cat.bmp")) and result["latency_ms"] > 0
    top = {c["id"]: c for c in result["classes"]}
    assert len(result["classes"]) == 3 and 286 in top
    assert top[286]["label"] == "Egyptian cat" and top[286]["score"] >= 0.7


@pytest.mark.parametrize("name, image, extra", [
    ("mobilenet_v1_0.25_128_quant", "cat.bmp", []),
    ("mobilenet_v1_0.5_160_quant", "cat.bmp", []),
    ("mobilenet_v2_1.0_224_quant", "parrot.jpg", []),
    ("keras_lstm_mnist_ptq", "mnist_nine.bmp", []),
    ("deeplabv3_mnv2_dm05_pascal_quant", "bird_segmentation.bmp", ["--resize", "lanczos"]),
])
def test_compiled_twin_on_auto_gives_its_cpu_twins_results(coral, name, image, extra):
    twin, twin_notice = run_json(coral(name + "_edgetpu.tflite"), coral(image), *extra)
    cpu, cpu_notice = run_json(coral(name + ".tflite"), coral(image), "--device", "cpu", *extra)
    strip = ("latency_ms", "timings_ms")
    assert [{k: v for k, v in r.items() if k not in strip} for r in twin["results"]] == \
           [{k: v for k, v in r.items() if k not in strip} for r in cpu["results"]]
    assert twin["device"] == "cpu" and twin["model"] == str(coral(name + "_edgetpu.tflite"))
    assert twin_notice.count("running its CPU twin") == 1 and cpu_notice == ""


def test_segmentation_summary_and_saved_overlay(coral, tmp_path):
    out = tmp_path / "bird.png"
    document, _ = run_json(coral("deeplabv3_mnv2_dm05_pascal_quant.tflite"), coral("bird_segmentation.bmp"),
                           "--labels", coral("pascal_voc_segmentation_labels.txt"), "--resize", "lanczos",
                           "--save", out)
    [result] = document["results"]
    assert document["task"] == "segmentation" and result["mask"]["shape"] == [513, 513]
    labels = {c["label"]: c["fraction"] for c in result["mask"]["classes"]}
    assert labels["bird"] > 0.05 and labels["background"] > 0.5
    with Image.open(out) as saved:
        assert saved.size == (513, 513)


def test_classification_save_to_folder(coral, tmp_path):
    document, _ = run_json(coral("mobilenet_v1_0.25_128_quant.tflite"), coral("cat.bmp"), coral("parrot.jpg"),
                           "--save", tmp_path / "out")
    saved = sorted(p.name for p in (tmp_path / "out").iterdir())
    assert saved == ["cat_annotated.png", "parrot_annotated.png"]
    assert [r["saved"] for r in document["results"]] == [str(tmp_path / "out" / n) for n in saved]


def test_readable_output(coral):
    result = edgekit("run", coral("mobilenet_v2_1.0_224_quant.tflite"), coral("cat.bmp"), "--labels",
                     coral("imagenet_labels.txt"), "--top-k", 1)
    assert result.exit_code == 0
    assert "Egyptian cat" in result.stdout and "invoke" in result.stdout


def test_short_label_file_warns_and_numbers_unknown_ids(coral, tmp_path):
    labels = tmp_path / "labels.txt"
    labels.write_text("background\ntench\n")
    document, notice = run_json(coral("mobilenet_v2_1.0_224_quant.tflite"), coral("cat.bmp"), "--labels", labels,
                                "--top-k", 1)
    assert notice == (f"edgekit: warning: {labels}: 2 labels for a model with 1001 classes; ids without a label "
                      "(999: 2, 3, 4, 5, 6, ...) are shown as 'class N'\n")
    assert document["results"][0]["classes"][0]["label"] == "class 286"


def test_missing_model(tmp_path, coral):
    missing = tmp_path / "nothing.tflite"
    assert_one_line_error(edgekit("run", missing, coral("cat.bmp")), f"{missing}: no such file", code=2)


def test_not_a_model(coral):
    image = coral("cat.bmp")
    assert_one_line_error(edgekit("run", image, image), f"{image}: not a TFLite model (no 'TFL3' identifier); "
                          "give a .tflite file written by the TFLite converter", code=2)


def test_truncated_model(coral, tmp_path):
    truncated = tmp_path / "truncated.tflite"
    truncated.write_bytes(coral("mobilenet_v1_0.25_128_quant.tflite").read_bytes()[:40000])
    result = edgekit("run", truncated, coral("cat.bmp"))
    assert result.exit_code == 2 and result.stderr.count("\n") == 1
    assert result.stderr.startswith(f"edgekit: error: {truncated}: damaged or truncated TFLite model (")
    assert result.stderr.endswith("); convert or download it again\n")


def test_model_failing_in_the_runtime(coral):
    model = coral("invalid_models/model_invoking_error.tflite")
    result = edgekit("run", model, coral("cat.bmp"), "--device", "cpu")
    assert result.exit_code == 1 and result.stderr.count("\n") == 1
    assert result.stderr.startswith(f"edgekit: error: {model}: the TFLite runtime cannot load this model (")
    assert "fake-op-double" in result.stderr


def test_float_model_on_edgetpu(coral, tmp_path):
    model = to_float(coral("tools/split_concat.tflite"), tmp_path / "float.tflite")
    assert_one_line_error(edgekit("run", model, coral("cat.bmp"), "--device", "edgetpu"),
                          f"{model}: a float model cannot run on the Edge TPU, which runs only int8/uint8 models "
                          "compiled by edgetpu_compiler: quantize it (edgekit convert), compile it (edgekit "
                          "compile), or use --device cpu")


def test_unknown_device(coral):
    assert_one_line_error(edgekit("run", coral("mobilenet_v1_0.25_128_quant.tflite"), coral("cat.bmp"),
                                  "--device", "gpu:0"),
                          "unknown device 'gpu:0': use cpu, auto, edgetpu, usb, usb:N, pci, pci:N or :N")


@pytest.mark.parametrize("task, why", [
    ("detection", "not a detection model: 1 output(s), where TFLite_Detection_PostProcess gives 4 (boxes, classes, "
                  "scores, count)"),
    ("segmentation", "segmentation output shape [1, 1001] is neither [1, H, W] nor [1, H, W, C]")])
def test_task_the_outputs_do_not_fit(coral, task, why):
    model = coral("mobilenet_v1_0.25_128_quant.tflite")
    assert_one_line_error(edgekit("run", model, coral("cat.bmp"), "--task", task, "--device", "cpu"),
                          f"{model}: its outputs do not fit the task {task} ({why}); leave --task out to use the one "
                          "read from the model")


def make_bad_image(kind, tmp_path, coral):
    """One kind of broken image file, made only when its test runs (the bomb takes a moment)."""
    path = tmp_path / {"empty": "empty.jpg", "truncated": "truncated.jpg", "text": "notes.png",
                       "bomb": "bomb.png", "missing": "missing.jpg"}[kind]
    if kind == "empty":
        path.write_bytes(b"")
    elif kind == "truncated":
        path.write_bytes(coral("parrot.jpg").read_bytes()[:5000])
    elif kind == "text":
        path.write_text("not a picture\n")
    elif kind == "bomb":
        # A 20000 x 20000 PNG that is almost all zeros: tiny on disk, 1.2 GB if decoded.
        Image.new("1", (20000, 20000)).save(path)
    return path


@pytest.mark.parametrize("kind", ["empty", "truncated", "text", "bomb", "missing"])
def test_bad_images(coral, tmp_path, kind):
    image = make_bad_image(kind, tmp_path, coral)
    result = edgekit("run", coral("mobilenet_v1_0.25_128_quant.tflite"), image, "--device", "cpu")
    assert result.exit_code != 0 and "Traceback" not in result.output
    assert result.stderr.startswith(f"edgekit: error: {image}") and result.stderr.count("\n") == 1


def test_debug_shows_the_traceback(tmp_path, coral):
    result = subprocess.run([sys.executable, "-m", "edgekit", "--debug", "run", str(tmp_path / "x.tflite"),
                             str(coral("cat.bmp"))], capture_output=True, text=True, cwd=ROOT)
    assert result.returncode != 0 and "Traceback" in result.stderr and "ModelFormatError" in result.stderr


def test_runtime_never_imports_tensorflow(coral):
    script = (
        "import sys\n"
        "from edgekit.cli import main\n"
        "sys.argv = ['edgekit', 'run', sys.argv[1], sys.argv[2], '--device', 'auto', '--json']\n"
        "try:\n"
        "    main()\n"
        "except SystemExit as e:\n"
        "    assert not e.code, e.code\n"
        "assert 'tensorflow' not in sys.modules, 'tensorflow was imported'\n"
        "print('NO-TF-OK', file=sys.stderr)\n")
    result = subprocess.run([sys.executable, "-c", script, str(coral("mobilenet_v1_0.25_128_quant_edgetpu.tflite")),
                             str(coral("cat.bmp"))], capture_output=True, text=True, cwd=ROOT)
    assert result.returncode == 0, result.stderr
    assert "NO-TF-OK" in result.stderr
    assert json.loads(result.stdout)["results"][0]["classes"]


def test_bench_json(coral):
    result = edgekit("bench", coral("mobilenet_v1_0.25_128_quant.tflite"), "-n", 5, "--warmup", 1, "--json")
    assert result.exit_code == 0, result.stderr
    document = json.loads(result.stdout)
    for part in ("invoke", "pipeline"):
        stats = document[part]
        assert stats["n"] == 5
        assert 0 < stats["min_ms"] <= stats["p50_ms"] <= stats["p90_ms"] <= stats["p99_ms"] <= stats["max_ms"]
        assert stats["fps"] > 0
    assert document["pipeline"]["p50_ms"] >= document["invoke"]["min_ms"]


def test_bench_readable(coral):
    result = edgekit("bench", coral("keras_lstm_mnist_ptq.tflite"), "-n", 3, "--warmup", 0)
    assert result.exit_code == 0, result.stderr
    assert "invoke" in result.stdout and "pipeline" in result.stdout and "p99" in result.stdout


def test_doctor_without_runtime_library():
    result = edgekit("doctor", "--json")
    assert result.exit_code == 0
    document = json.loads(result.stdout)
    assert document["libedgetpu"]["found"] is False and document["edge_tpus"] == []
    assert document["backend"].startswith("ai-edge-litert")
    assert any("libedgetpu1-std" in step for step in document["next"])
    readable = edgekit("doctor")
    assert "libedgetpu" in readable.stdout and "not found" in readable.stdout


@pytest.mark.parametrize("name", sorted(COMMANDS))
def test_every_command_has_help_with_an_example_and_json(name):
    result = edgekit(name, "--help")
    assert result.exit_code == 0, result.output
    assert "Example:" in result.stdout
    command = load_command(name)
    # A group (`edgekit learn`) gives each of its subcommands the same help.
    for words in ([[name, sub] for sub in command.commands] if isinstance(command, click.Group) else [[name]]):
        result = edgekit(*words, "--help")
        assert result.exit_code == 0, result.output
        assert "Example:" in result.stdout and "--json" in result.stdout, words


def test_top_level_help_lists_every_command_of_the_table():
    listed = edgekit("--help").stdout.split("Commands:")[1].split()
    assert set(COMMANDS) <= set(listed)


def test_version():
    result = edgekit("--version")
    assert result.exit_code == 0 and result.stdout.startswith("edgekit, version ")


def test_module_entry_point(coral):
    env = dict(os.environ)
    result = subprocess.run([sys.executable, "-m", "edgekit", "--version"], capture_output=True, text=True,
                            cwd=ROOT, env=env)
    assert result.returncode == 0 and "edgekit" in result.stdout


def test_detection_objects_in_image_pixels(tmp_path):
    from detection_model import build_detection_model

    # Anchor 0 decodes to the input's top-left quarter, anchor 1 (moved down by ty) to a box that runs
    # past the picture's bottom edge; the letterbox halves the 320x160 picture into the 160x120 input.
    model = build_detection_model(tmp_path / "det.tflite", [[0.25, 0.25, 0.5, 0.5], [0.5, 0.75, 0.5, 0.25]],
                                  [[0, 0, 0, 0], [2.5, 0, 0, 0]], [[0.1, 0.9], [0.8, 0.05]],
                                  layout="scores-first", input_hw=(120, 160))
    picture = tmp_path / "street.png"
    Image.new("RGB", (320, 160), (90, 120, 200)).save(picture)
    labels = tmp_path / "labels.txt"
    labels.write_text("person\ncat\n")
    out = tmp_path / "boxes.png"
    document, _ = run_json(model, picture, "--labels", labels, "--save", out)
    assert document["task"] == "detection"
    assert document["results"][0]["objects"] == [
        {"id": 1, "label": "cat", "score": 0.9, "bbox": [0.0, 0.0, 160.0, 120.0]},
        {"id": 0, "label": "person", "score": 0.8, "bbox": [200.0, 90.0, 280.0, 160.0]},
    ]
    with Image.open(out) as saved:
        assert saved.size == (320, 160)
        assert saved.getpixel((0, 60)) != (90, 120, 200)  # the cat's box edge is drawn


def test_run_images_returns_data_and_the_cli_builds_the_json(tmp_path):
    """The library's report holds pycoral's types (boxes as the adapter maps them); the JSON `edgekit run`
    prints is built from it by cmd_run.run_document, clipping boxes to the picture there."""
    from detection_model import build_detection_model

    from edgekit.cli.cmd_run import run_document
    from edgekit.runtime.adapters.detect import Object
    from edgekit.runtime.inference import run_images

    model = build_detection_model(tmp_path / "det.tflite", [[0.25, 0.25, 0.5, 0.5], [0.5, 0.75, 0.5, 0.25]],
                                  [[0, 0, 0, 0], [2.5, 0, 0, 0]], [[0.1, 0.9], [0.8, 0.05]], input_hw=(120, 160))
    picture = tmp_path / "street.png"
    Image.new("RGB", (320, 160), (90, 120, 200)).save(picture)
    report = run_images(str(model), [str(picture)], device="cpu")
    [result] = report.results
    assert report.model.task == "detection" and report.saved == [None] and result.size == (320, 160)
    assert result.picture is None and result.classes is None and result.mask is None
    assert all(isinstance(o, Object) for o in result.objects)
    assert result.objects[1].bbox.ymax > 160  # past the picture's edge, as the adapter maps it
    printed, _ = run_json(model, picture, "--device", "cpu")
    built = run_document(report)

    def without_timings(document):
        return dict(document, results=[{k: v for k, v in r.items() if k not in ("latency_ms", "timings_ms")}
                                       for r in document["results"]])

    assert without_timings(built) == without_timings(printed)
    assert list(built) == list(printed) and list(built["results"][0]) == list(printed["results"][0])
    assert built["results"][0]["objects"][1]["bbox"][3] == 160.0

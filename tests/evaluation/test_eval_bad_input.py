"""Every bad input of issue 6 from the command line: one line on stderr saying what and what to do, a
non-zero exit, never a traceback."""

import json
import os
import shutil

import pytest
from cli_runner import edgekit
from PIL import Image

pytestmark = pytest.mark.usefixtures("no_edgetpu_library", "no_edgetpu_compiler")

SMALL = "mobilenet_v1_0.25_128_quant.tflite"
MEDIUM = "mobilenet_v1_0.5_160_quant.tflite"


def one_line_error(*args):
    result = edgekit(*args)
    assert result.exit_code != 0
    assert "Traceback" not in result.stderr and "Traceback" not in result.stdout
    lines = [line for line in result.stderr.splitlines() if line.startswith("edgekit: error:")]
    assert len(lines) == 1, result.stderr
    return lines[0]


def test_empty_data_folder(tmp_path, coral):
    (tmp_path / "empty").mkdir()
    message = one_line_error("eval", coral(SMALL), "--data", tmp_path / "empty", "--labels",
                             coral("imagenet_labels.txt"))
    assert "empty: no images" in message


def test_class_folders_matching_no_label_are_named(tmp_path, coral):
    for folder in ("Egyptian cat", "kitties", "birbs"):
        (tmp_path / "data" / folder).mkdir(parents=True)
        os.symlink(coral("cat.bmp"), tmp_path / "data" / folder / "cat.bmp")
    message = one_line_error("eval", coral(SMALL), "--data", tmp_path / "data", "--labels",
                             coral("imagenet_labels.txt"))
    assert "2 of 3 class folders match no label" in message and "'birbs', 'kitties'" in message


def test_unmatched_folders_with_a_reference_say_how_to_measure_agreement_only(tmp_path, coral):
    (tmp_path / "data" / "2026-11-01").mkdir(parents=True)
    os.symlink(coral("cat.bmp"), tmp_path / "data" / "2026-11-01" / "cat.bmp")
    message = one_line_error("eval", coral(SMALL), "--data", tmp_path / "data", "--labels",
                             coral("imagenet_labels.txt"), "--reference", coral(SMALL))
    assert "1 of 1 class folders match no label" in message and "'2026-11-01'" in message
    assert message.endswith(f"put the images directly in {tmp_path / 'data'} (no subfolders)")


def test_class_folders_without_labels_or_reference(tmp_path, coral):
    (tmp_path / "data" / "cat").mkdir(parents=True)
    os.symlink(coral("cat.bmp"), tmp_path / "data" / "cat" / "cat.bmp")
    assert "--labels FILE, or --reference MODEL" in one_line_error("eval", coral(SMALL), "--data", tmp_path / "data")


def detector_folder(tmp_path):
    from detection_model import build_detection_model

    model = build_detection_model(tmp_path / "detector.tflite", [[0.5, 0.5, 0.5, 0.5]], [[0, 0, 0, 0]],
                                  [[0.9]], input_hw=(32, 32))
    Image.new("RGB", (32, 32)).save(tmp_path / "a.png")
    return model


def test_malformed_coco_json(tmp_path):
    model = detector_folder(tmp_path)
    (tmp_path / "instances.json").write_text('{"images": [{"id": 1, "file_name": "a.png"')
    message = one_line_error("eval", model, "--data", tmp_path / "instances.json")
    assert "instances.json: malformed COCO JSON" in message
    (tmp_path / "instances.json").write_text(json.dumps({"images": [{"id": 1, "file_name": "a.png"}],
                                                         "annotations": [], "categories": []}))
    assert "missing key 'width'" in one_line_error("eval", model, "--data", tmp_path / "instances.json")


def test_malformed_yolo_line(tmp_path):
    model = detector_folder(tmp_path)
    (tmp_path / "yolo" / "images").mkdir(parents=True)
    (tmp_path / "yolo" / "labels").mkdir()
    shutil.copy(tmp_path / "a.png", tmp_path / "yolo" / "images" / "a.png")
    (tmp_path / "yolo" / "labels" / "a.txt").write_text("0 0.5 0.5 0.2 0.2\n0 0.5 0.5 twenty\n")
    message = one_line_error("eval", model, "--data", tmp_path / "yolo")
    assert "a.txt:2: malformed YOLO label line '0 0.5 0.5 twenty'" in message


def test_malformed_voc_xml(tmp_path):
    model = detector_folder(tmp_path)
    (tmp_path / "voc" / "Annotations").mkdir(parents=True)
    (tmp_path / "voc" / "Annotations" / "a.xml").write_text("<annotation><object><name>cat</name>")
    message = one_line_error("eval", model, "--data", tmp_path / "voc")
    assert "a.xml: malformed Pascal VOC XML" in message


def test_ensemble_of_different_label_sets_is_refused(tmp_path, coral):
    message = one_line_error("ensemble", coral(SMALL), coral("keras_lstm_mnist_ptq.tflite"), "--out",
                             tmp_path / "e.json")
    assert "different label sets" in message and "1001 classes" in message and "10;" in message
    assert not (tmp_path / "e.json").exists()


def test_missing_member(tmp_path, coral):
    for name in (SMALL, MEDIUM):
        shutil.copy(coral(name), tmp_path / name)
    assert "no such model file" in one_line_error("ensemble", tmp_path / SMALL, tmp_path / "gone.tflite",
                                                  "--out", tmp_path / "e.json")
    edgekit("ensemble", tmp_path / SMALL, tmp_path / MEDIUM, "--out", tmp_path / "e.json")
    os.remove(tmp_path / MEDIUM)
    (tmp_path / "data").mkdir()
    os.symlink(coral("cat.bmp"), tmp_path / "data" / "cat.bmp")
    message = one_line_error("eval", tmp_path / "e.json", "--data", tmp_path / "data", "--reference", coral(SMALL))
    assert f"member {MEDIUM} is missing" in message


def test_bad_weights(tmp_path, coral):
    assert "2 weights for 3 models" in one_line_error("ensemble", coral(SMALL), coral(MEDIUM), coral(SMALL),
                                                      "--weights", "1,2", "--out", tmp_path / "e.json")
    assert "give numbers" in one_line_error("ensemble", coral(SMALL), coral(MEDIUM), "--weights", "1,x",
                                            "--out", tmp_path / "e.json")


def test_a_model_failing_in_the_workers_is_one_line(tmp_path, coral):
    (tmp_path / "data").mkdir()
    for name in ("cat.bmp", "parrot.jpg"):
        os.symlink(coral(name), tmp_path / "data" / name)
    message = one_line_error("eval", coral("invalid_models/model_invoking_error.tflite"), "--data", tmp_path / "data",
                             "--task", "classification", "--reference", coral(SMALL), "--workers", "2")
    assert "fake-op-double" in message


def test_folder_names_are_checked_before_any_model_runs(tmp_path, coral):
    from edgekit.errors import EdgekitError
    from edgekit.evaluation import evaluate

    (tmp_path / "data" / "kitties").mkdir(parents=True)
    os.symlink(coral("cat.bmp"), tmp_path / "data" / "kitties" / "cat.bmp")
    # The reference is never opened: the folder names fail first.
    with pytest.raises(EdgekitError, match="1 of 1 class folders match no label"):
        evaluate.evaluate([coral(SMALL)], tmp_path / "data", labels_path=coral("imagenet_labels.txt"),
                          reference=str(tmp_path / "not-opened.tflite"), device="cpu", progress=False)

"""`edgekit train efficientdet-lite0` end to end: a COCO folder of real-pixel composites in, an int8 detector out
that `edgekit run` draws and `edgekit camera` shows boxes with; the report; Ctrl-C and `--resume`; bad input as
one line."""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from box_sets import composite_pictures, composite_set, write_video
from browser import picture_widths
from cli_runner import edgekit
from PIL import Image

from edgekit.runtime.adapters.detect import BBox
from edgekit.tflite.metadata import read_edgekit_metadata
from edgekit.tflite.model import read_model

# Small enough for CI: the BiFPN and heads on a frozen ImageNet backbone, at a reduced input, on pictures about
# that size, at a higher rate than the recipe's (which is meant for longer runs).
SIZE = 192
EPOCHS = 16
PICTURE_SIZES = ((192, 144), (144, 192), (192, 192))
FLAGS = ("--input-size", SIZE, "--freeze-backbone", "--no-compile")
FIT = ("--epochs", EPOCHS, "--batch-size", 4, "--learning-rate", 0.02)
EDGEKIT = [sys.executable, "-m", "edgekit"]
MODEL = "efficientdet-lite0"


@pytest.fixture(scope="module")
def box_data(tmp_path_factory):
    return Path(composite_set(tmp_path_factory.mktemp("boxes") / "coco", "coco", train=160, val=16, test=24, seed=3,
                              sizes=PICTURE_SIZES))


@pytest.fixture(scope="module")
def trained(box_data, tmp_path_factory):
    """One run through the CLI: (out folder, its --json document)."""
    out = tmp_path_factory.mktemp("trained") / "out"
    result = edgekit("train", MODEL, "--data", box_data, "--out", out, *FIT, *FLAGS, "--json")
    assert result.exit_code == 0, result.output
    return out, json.loads(result.stdout)


def _iou(a, b):
    overlap = BBox.intersect(BBox(*a), BBox(*b))
    inter = overlap.area if overlap.valid else 0.0
    return inter / (BBox(*a).area + BBox(*b).area - inter)


def test_train_writes_every_promised_file_and_scores_both_models(trained):
    out, doc = trained
    # Nothing half-written or left over: no temporaries, and the checkpoint goes once all is written.
    assert sorted(os.listdir(out)) == sorted([f"{MODEL}.keras", f"{MODEL}_int8.tflite", "labels.txt",
                                              f"{MODEL}_report.json", f"{MODEL}_report.html",
                                              "train_report.json", "train_report.html"])
    assert doc["files"]["edgetpu"] is None            # --no-compile, and no compiler here either way
    settings = read_edgekit_metadata(read_model(out / f"{MODEL}_int8.tflite"))
    assert settings["labels"] == ["face", "coin"] and settings["task"] == "detection"
    assert settings["detection"] == {"max_detections": 25, "score_threshold": 1e-8, "iou_threshold": 0.5}
    assert (out / "labels.txt").read_text().split() == ["face", "coin"]
    assert doc["classes"] == ["face", "coin"] and doc["input_size"] == [SIZE, SIZE]
    assert json.loads((out / "train_report.json").read_text())["test"] == doc["test"]
    assert len(doc["history"]) == EPOCHS and doc["history"][-1]["loss"] < doc["history"][0]["loss"]
    assert doc["data"]["train"]["pictures"] == 160 and doc["data"]["test"]["pictures"] == 24
    test = doc["test"]
    assert set(test) == {"float", "int8"}
    for model in ("float", "int8"):
        assert set(test[model]) >= {"map", "map50", "per_class", "pr_curve"}
        assert set(test[model]["per_class"]) == {"face", "coin"}
    # Learnt, on objects and backgrounds it never saw.
    assert test["int8"]["map50"] >= 0.25, test
    assert abs(test["float"]["map50"] - test["int8"]["map50"]) <= 0.1, test
    assert doc["edgetpu"]["tpu"] > 0.9 * doc["edgetpu"]["ops"]


def test_run_draws_the_trained_objects(trained, box_data, tmp_path):
    out, _ = trained
    coco = json.loads((box_data / "annotations" / "instances_test.json").read_text())
    names = {c["id"]: c["name"] for c in coco["categories"]}
    shown = [image for image in coco["images"] if any(a["image_id"] == image["id"] for a in coco["annotations"])][:6]
    pictures = [box_data / "images" / "test" / image["file_name"] for image in shown]
    saved = tmp_path / "drawn"
    result = edgekit("run", out / f"{MODEL}_int8.tflite", *pictures, "--device", "cpu", "--save", saved, "--json")
    assert result.exit_code == 0, result.stderr
    found = 0
    for image, picture, outcome in zip(shown, pictures, json.loads(result.stdout)["results"]):
        objects = outcome["objects"]
        assert {o["label"] for o in objects} <= {"face", "coin"}
        for a in coco["annotations"]:
            if a["image_id"] == image["id"]:
                x, y, w, h = a["bbox"]
                found += any(o["label"] == names[a["category_id"]] and _iou((x, y, x + w, y + h), o["bbox"]) >= 0.5
                             for o in objects)
        drawn = np.asarray(Image.open(outcome["saved"]).convert("RGB"), np.int16)
        original = np.asarray(Image.open(picture).convert("RGB"), np.int16)
        assert drawn.shape == original.shape
        for o in objects:
            # Each box's outline is drawn: the pixels along its top edge changed.
            x0, y0, x1, y1 = (int(v) for v in o["bbox"])
            y0 = min(max(y0, 0), drawn.shape[0] - 1)
            assert np.abs(drawn[y0, max(x0, 0):x1] - original[y0, max(x0, 0):x1]).mean() > 10
    # At the default threshold, true objects of the held-out pictures are found with their class.
    assert found >= 3, json.loads(result.stdout)


def test_camera_shows_boxes_on_a_video_of_such_pictures(trained, tmp_path):
    out, _ = trained
    video = write_video(tmp_path / "trail.avi", composite_pictures(6, "test", seed=11), fps=5)
    result = edgekit("camera", out / f"{MODEL}_int8.tflite", "--source", video, "--device", "cpu", "--max-frames",
                     6, "--json")
    assert result.exit_code == 0, result.stderr
    frames = [json.loads(line) for line in result.stdout.splitlines()]
    assert len(frames) == 6
    labelled = [o["label"] for frame in frames for o in frame["objects"]]
    assert labelled and set(labelled) <= {"face", "coin"}


def test_the_report_shows_its_pictures_in_a_browser(trained, tmp_path):
    out, _ = trained
    html = (out / "train_report.html").read_text()
    assert "mAP" in html and "face" in html and "coin" in html
    widths = picture_widths(out / "train_report.html", tmp_path, "detector report")
    assert widths and all(w > 0 for w in widths)


@pytest.mark.slow
def test_the_keras_model_converts_with_edgekit_convert(trained, box_data, tmp_path):
    out, _ = trained
    result = edgekit("convert", out / f"{MODEL}.keras", "--calib", box_data / "images" / "train", "--out",
                     tmp_path / "converted", "--num-samples", 16, "--no-compile", "--json")
    assert result.exit_code == 0, result.stderr
    assert json.loads(result.stdout)["metadata"]["task"] == "detection"


@pytest.mark.slow
def test_training_continues_from_a_detector_trained_before(trained, tmp_path):
    out, _ = trained
    one_class = composite_set(tmp_path / "faces", "yolo", train=12, val=0, test=0, seed=5)
    result = edgekit("train", MODEL, "--data", one_class, "--out", tmp_path / "again", "--weights",
                     out / f"{MODEL}.keras", "--epochs", 1, "--val-split", 0.2, "--test-split", 0, *FLAGS, "--json")
    assert result.exit_code == 0, result.stderr
    assert json.loads(result.stdout)["recipe"]["weights"] == str(out / f"{MODEL}.keras")


# --- Ctrl-C and --resume ---------------------------------------------------------------------------------

def _default_sigint():
    # A background job inherits SIGINT ignored; give the child a terminal's default (see test_train_cli).
    signal.signal(signal.SIGINT, signal.SIG_DFL)


RESUMABLE = ("--input-size", 128, "--freeze-backbone", "--no-compile", "--epochs", 3, "--batch-size", 4)


def test_ctrl_c_keeps_the_last_epoch_and_resume_finishes_the_run(tmp_path):
    data = composite_set(tmp_path / "coco", "coco", train=12, val=4, test=4, seed=7)
    out = tmp_path / "out"
    args = [*EDGEKIT, "train", MODEL, "--data", str(data), "--out", str(out), *map(str, RESUMABLE)]
    process = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                               preexec_fn=_default_sigint)
    state = out / "checkpoint" / "state.json"
    deadline = time.monotonic() + 300
    while not (state.exists() and json.loads(state.read_text())["epochs_done"] >= 1):
        assert process.poll() is None, process.communicate()
        assert time.monotonic() < deadline, "no checkpoint in time"
        time.sleep(0.2)
    process.send_signal(signal.SIGINT)
    _, stderr = process.communicate(timeout=120)
    assert process.returncode == 130, stderr
    assert stderr.strip().splitlines()[-1] == (
        f"edgekit: error: training interrupted; the last finished epoch's checkpoint is in {out / 'checkpoint'}: "
        "run the same command with --resume to continue")
    done = json.loads(state.read_text())["epochs_done"]
    assert not (out / f"{MODEL}_int8.tflite").exists()
    resumed = subprocess.run(args + ["--resume", "--json"], capture_output=True, text=True, timeout=600)
    assert resumed.returncode == 0, resumed.stderr
    assert f"resuming after epoch {done}" in resumed.stderr
    history = json.loads(resumed.stdout)["history"]
    assert [row["epoch"] for row in history] == [1, 2, 3]
    assert not (out / "checkpoint").exists()


# --- bad input ---------------------------------------------------------------------------------------------

def test_a_folder_mixing_formats_is_one_line(tmp_path):
    data = Path(composite_set(tmp_path / "mixed", "voc", train=3, val=0, test=0))
    (data / "labels").mkdir()
    result = edgekit("train", MODEL, "--data", data, "--out", tmp_path / "out", *FLAGS)
    assert result.exit_code == 2
    assert result.stderr.strip().splitlines() == [
        f"edgekit: error: {data}: mixes detection formats: Pascal VOC (Annotations/ or JPEGImages/), YOLO (labels/): "
        "keep one format per folder"]


@pytest.mark.parametrize("flag", [["--fine-tune"], ["--ensemble", "2"]])
def test_classifier_flags_are_refused_for_a_detector(tmp_path, flag):
    result = edgekit("train", MODEL, "--data", tmp_path, "--out", tmp_path / "out", *flag)
    assert result.exit_code == 2
    assert (f"{flag[0]}: for classifiers; a detector trains its whole network by default (--freeze-backbone trains "
            "only the BiFPN and heads)") in result.stderr


def test_detector_flags_are_refused_for_a_classifier(tmp_path):
    result = edgekit("train", "efficientnet-lite0", "--data", tmp_path, "--out", tmp_path / "out",
                     "--freeze-backbone")
    assert result.exit_code == 2
    assert "--freeze-backbone: for detectors (efficientdet-lite*)" in result.stderr

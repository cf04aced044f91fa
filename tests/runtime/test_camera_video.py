"""`edgekit camera` and the examples on files the tests write: per-frame results, recordings, SIGTERM.

The video is 30 frames of cat.bmp then 30 of parrot.jpg, so mobilenet_v2's top class must switch from
286 (Egyptian cat) to 89 (macaw) exactly at frame 30: files are processed losslessly, in order.
"""

import json
import os
import queue
import signal
import subprocess
import sys
import threading
from pathlib import Path

import cv2
import numpy as np
import pytest
from cli_runner import edgekit
from detection_model import build_detection_model

from edgekit.runtime import annotate, images
from edgekit.runtime.adapters.detect import BBox, Object
from edgekit.runtime.camera import annotate_frame, bgr_to_pil
from edgekit.runtime.interpreter import open_model
from edgekit.runtime.pipeline import Runner

pytestmark = pytest.mark.usefixtures("no_edgetpu_library")

ROOT = Path(__file__).resolve().parents[2]
MODEL = "mobilenet_v2_1.0_224_quant.tflite"
SIZE = (320, 240)
SWITCH = 30
# How long a subprocess may take to show its first frames on a busy two-core machine: a bound on the
# wait, not a speed requirement.
PATIENCE_S = 120


def picture(path, size=SIZE):
    return cv2.resize(cv2.imread(str(path)), size, interpolation=cv2.INTER_AREA)


@pytest.fixture
def video(tmp_path, coral):
    path = tmp_path / "cat_then_parrot.mp4"
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), 30.0, SIZE)
    for name in ["cat.bmp"] * SWITCH + ["parrot.jpg"] * SWITCH:
        writer.write(picture(coral(name)))
    writer.release()
    return path


def frame_count(path):
    capture = cv2.VideoCapture(str(path))
    count = 0
    while capture.read()[0]:
        count += 1
    capture.release()
    return count


def test_json_lines_switch_class_at_the_right_frame(video, coral):
    result = edgekit("camera", coral(MODEL), "--source", video, "--device", "cpu", "--labels",
                     coral("imagenet_labels.txt"), "--json")
    assert result.exit_code == 0, result.stderr
    lines = [json.loads(line) for line in result.stdout.splitlines()]
    assert len(lines) == 2 * SWITCH
    assert all(set(line) == {"frame", "time", "latency_ms", "classes"} for line in lines)
    assert [line["frame"] for line in lines] == list(range(2 * SWITCH))
    top = [line["classes"][0] for line in lines]
    assert [t["id"] for t in top] == [286] * SWITCH + [89] * SWITCH
    assert top[0]["label"] == "Egyptian cat" and top[-1]["label"] == "macaw"
    assert all(line["latency_ms"] > 0 for line in lines)
    # The summary goes to stderr, one line, so stdout stays pure JSON.
    [summary] = [line for line in result.stderr.splitlines() if line.startswith("edgekit camera:")]
    assert f"{2 * SWITCH} frames" in summary and "dropped 0" in summary and "ended: end" in summary


def test_max_frames_and_recording_of_a_folder_whose_size_changes(tmp_path, coral):
    folder = tmp_path / "pictures"
    folder.mkdir()
    for i, name in enumerate(["cat.bmp", "parrot.jpg", "cat.bmp"]):
        images.load_image(coral(name)).save(folder / f"{i}.png")
    out = tmp_path / "annotated.mp4"
    result = edgekit("camera", coral(MODEL), "--source", folder, "--device", "cpu", "--record", out,
                     "--max-frames", 3, "--json")
    assert result.exit_code == 0, result.stderr
    assert len(result.stdout.splitlines()) == 3
    assert "size changes 2" in result.stderr and "ended: max frames" in result.stderr
    assert frame_count(out) == 3
    capture = cv2.VideoCapture(str(out))
    # 341 rows made even: the encoder's 4:2:0 colour needs even sizes.
    assert (capture.get(cv2.CAP_PROP_FRAME_WIDTH), capture.get(cv2.CAP_PROP_FRAME_HEIGHT)) == (512, 340)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["annotated.mp4", "pictures"]  # no temp file left


def test_sigterm_mid_run_leaves_a_playable_recording(video, coral, tmp_path):
    out = tmp_path / "live.mp4"
    command = [sys.executable, "-m", "edgekit", "camera", str(coral(MODEL)), "--source", str(video), "--loop",
               "--device", "cpu", "--record", str(out), "--json"]
    process = subprocess.Popen(command, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    lines = queue.Queue()
    reader = threading.Thread(target=lambda: [lines.put(line) for line in process.stdout], daemon=True)
    reader.start()
    try:
        for _ in range(10):  # mid-run: ten frames processed, the loop would go on for ever
            json.loads(lines.get(timeout=PATIENCE_S))
        process.send_signal(signal.SIGTERM)
        stderr = process.communicate(timeout=PATIENCE_S)[1]
    finally:
        if process.poll() is None:
            process.kill()
    assert process.returncode == 0, stderr
    assert "ended: signal SIGTERM" in stderr
    assert out.exists() and frame_count(out) >= 10
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []


def test_no_camera_is_one_line_listing_the_video_devices(coral):
    result = edgekit("camera", coral(MODEL), "--source", "63", "--device", "cpu")
    assert result.exit_code == 1
    assert result.stderr.count("\n") == 1 and "Traceback" not in result.output
    assert result.stderr.startswith("edgekit: error: no camera at 63 (/dev/video63 does not exist); "
                                    "video devices found: ")
    devices = sorted(p for p in os.listdir("/dev") if p.startswith("video") and p[5:].isdigit())
    for name in devices:
        assert f"/dev/{name}" in result.stderr
    if not devices:
        assert "video devices found: none" in result.stderr


def test_display_without_a_gui_says_what_to_use_instead(coral, video):
    if "GUI:                           NONE" not in cv2.getBuildInformation():
        pytest.skip("this OpenCV has a GUI; the message is for headless builds")
    result = edgekit("camera", coral(MODEL), "--source", video, "--display")
    assert result.exit_code == 1 and "--serve" in result.stderr and result.stderr.count("\n") == 1


def run_example(name, *args):
    command = [sys.executable, str(ROOT / "examples" / name), *[str(a) for a in args]]
    done = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=PATIENCE_S)
    assert done.returncode == 0, done.stderr
    return done.stdout


def test_classify_example_follows_the_video(video, coral):
    out = run_example("camera_classify.py", "--model", coral(MODEL), "--labels", coral("imagenet_labels.txt"),
                      "--source", video, "--serve", "")
    lines = [line for line in out.splitlines() if line.startswith("frame ")]
    assert len(lines) == 2 * SWITCH
    for i, line in enumerate(lines):
        assert line.startswith(f"frame {i}: " + ("Egyptian cat" if i < SWITCH else "macaw")), line


# Anchors (yc, xc, h, w), no offsets: class 1 at the top-left quarter, class 0 at the bottom right.
ANCHORS = [[0.25, 0.25, 0.5, 0.5], [0.75, 0.75, 0.5, 0.5]]
ENCODINGS = [[0, 0, 0, 0], [0, 0, 0, 0]]
SCORES = [[0.1, 0.9], [0.8, 0.05]]


@pytest.fixture
def detector(tmp_path):
    return build_detection_model(tmp_path / "detector.tflite", ANCHORS, ENCODINGS, SCORES)


def test_detect_example_json_and_recording(video, detector, tmp_path, coral):
    labels = tmp_path / "labels.txt"
    labels.write_text("person\nbicycle\n")
    out = tmp_path / "detections.mp4"
    stdout = run_example("camera_detect.py", "--model", detector, "--labels", labels, "--source", video,
                         "--max-frames", 4, "--record", out, "--json")
    lines = [json.loads(line) for line in stdout.splitlines()]
    assert [line["frame"] for line in lines] == [0, 1, 2, 3]
    width, height = SIZE
    for line in lines:
        found = {o["label"]: o for o in line["objects"]}
        assert set(found) == {"person", "bicycle"}
        assert found["bicycle"]["bbox"] == pytest.approx([0, 0, width / 2, height / 2], abs=1.0)
        assert found["person"]["bbox"] == pytest.approx([width / 2, height / 2, width, height], abs=1.0)
    assert frame_count(out) == 4


def test_detection_overlay_draws_boxes_in_the_frame(video, detector):
    runner = Runner(open_model(str(detector), device="cpu"), threshold=0.4)
    frame = cv2.VideoCapture(str(video)).read()[1]
    result = runner.run_loaded(bgr_to_pil(frame))
    assert [o.id for o in result.objects] == [1, 0] and isinstance(result.objects[0], Object)
    assert isinstance(result.objects[0].bbox, BBox) and result.classes is None and result.mask is None
    drawn = annotate_frame(frame, result, {0: "person", 1: "bicycle"}, fps=10.0)[:, :, ::-1]
    for class_id in (0, 1):
        color = np.array(annotate._box_color(class_id))
        assert np.all(drawn.reshape(-1, 3) == color, axis=1).sum() > 100, class_id


@pytest.mark.parametrize("args, expected", [
    (["--source", "videotestsrc ! videoconvert ! appsink"], "GStreamer"),
    (["--serve", "localhost:http"], "give HOST:PORT"),
    (["--record", "out.avi"], "record to an .mp4 file"),
    (["--max-frames", "0"], "--max-frames must be 1 or more"),
])
def test_bad_options_are_one_line_errors(video, coral, args, expected, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    if "GStreamer" in expected and "GStreamer:                   YES" in cv2.getBuildInformation():
        pytest.skip("this OpenCV has GStreamer: the pipeline would open")
    result = edgekit("camera", coral(MODEL), "--source", video, "--device", "cpu", *args)
    assert result.exit_code == 1 and result.stderr.count("\n") == 1, result.output
    assert result.stderr.startswith("edgekit: error: ") and expected in result.stderr
    assert not list(tmp_path.glob("*.avi"))

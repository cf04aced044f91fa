"""The camera's parts without a model: newest-frame handoff, backoff, sources, addresses, the recorder."""

import subprocess
import sys
import threading
from pathlib import Path

import cv2
import numpy as np
import pytest

from edgekit.errors import EdgekitError
from edgekit.runtime import images
from edgekit.runtime.adapters.classify import Class
from edgekit.runtime.camera import (Backoff, Frame, FrameGrabber, FrameSlot, Recorder, STATUS_COLOR, annotate_frame,
                                    parse_address, parse_source)
from edgekit.runtime.camera.overlay import bgr_to_pil
from edgekit.runtime.pipeline import ImageResult
from edgekit.runtime.tasks import CLASSIFICATION

ROOT = Path(__file__).resolve().parents[2]


def frame(i):
    return Frame(i, float(i), np.zeros((2, 2, 3), np.uint8), None)


def test_slot_hands_over_the_newest_frame_and_counts_the_stale_ones():
    slot = FrameSlot()
    for i in range(3):
        slot.put(frame(i))
    assert slot.take(0).index == 2
    assert slot.dropped == 2
    slot.put(frame(3))
    assert slot.take(0).index == 3 and slot.dropped == 2  # taken in time: nothing dropped


def test_slot_take_ends_when_closed_and_empty():
    slot = FrameSlot()
    slot.put(frame(0))
    slot.close()
    assert slot.take(0).index == 0  # what was there is still delivered
    assert slot.take(0) is None and slot.closed


def test_lossless_put_waits_for_the_consumer():
    slot, stop = FrameSlot(), threading.Event()
    slot.put(frame(0))
    done = []
    producer = threading.Thread(target=lambda: done.append(slot.put_wait(frame(1), stop)))
    producer.start()
    assert slot.take(5).index == 0
    producer.join(5)
    assert done == [True] and slot.take(5).index == 1 and slot.dropped == 0


def test_lossless_put_gives_up_when_stopped():
    slot, stop = FrameSlot(), threading.Event()
    slot.put(frame(0))
    stop.set()
    assert slot.put_wait(frame(1), stop) is False
    assert slot.take(0).index == 0


def test_backoff_doubles_up_to_the_limit_and_counts_attempts():
    assert list(Backoff(0.5, 3.0, attempts=5).delays()) == [0.5, 1.0, 2.0, 3.0, 3.0]
    forever = Backoff(1.0, 1.0, attempts=0).delays()
    assert [next(forever) for _ in range(100)] == [1.0] * 100
    with pytest.raises(EdgekitError):
        Backoff(2.0, 1.0)


def test_camera_command_reconnect_defaults_are_backoffs():
    from edgekit.cli.cmd_camera import camera_command

    defaults = {option.name: option.default for option in camera_command.params}
    backoff = Backoff()
    assert (defaults["reconnect_delay"], defaults["reconnect_max"], defaults["reconnect_attempts"]) == \
           (backoff.first, backoff.most, backoff.attempts)


def test_without_opencv_the_camera_command_says_how_to_get_it(coral):
    """The package loads its parts on first use: the CLI reads Backoff without cv2, and the command fails with
    one line when cv2 is missing."""
    script = ("import sys\n"
              "sys.modules['cv2'] = None  # as if not installed: importing it raises ImportError\n"
              "from edgekit.runtime.camera import Backoff\n"
              "from edgekit.cli import main\n"
              "sys.argv = ['edgekit', 'camera', sys.argv[1]]\n"
              "main()\n")
    done = subprocess.run([sys.executable, "-c", script, str(coral("mobilenet_v1_0.25_128_quant.tflite"))],
                          capture_output=True, text=True, cwd=ROOT)
    assert done.returncode == 1 and done.stdout == ""
    assert done.stderr == "edgekit: error: edgekit camera needs OpenCV: pip install 'edgekit[camera]'\n"


def test_parse_source_kinds(tmp_path):
    video = tmp_path / "clip.mp4"
    video.write_bytes(b"x")
    assert parse_source("0") == ("camera", 0, True, "0")
    assert parse_source("/dev/video3").kind == "camera"
    assert parse_source("rtsp://10.0.0.2/live").kind == "stream"
    assert parse_source("http://127.0.0.1:8080/stream.mjpg").live
    assert parse_source("v4l2src ! videoconvert ! appsink").kind == "gstreamer"
    assert parse_source(str(tmp_path)) == ("folder", str(tmp_path), False, str(tmp_path))
    assert parse_source(str(video)).kind == "file" and not parse_source(str(video)).live
    with pytest.raises(EdgekitError, match="no such video file or folder"):
        parse_source(str(tmp_path / "missing.mp4"))


def test_parse_address():
    assert parse_address("8081") == ("127.0.0.1", 8081)
    assert parse_address(":8081") == ("127.0.0.1", 8081)
    assert parse_address("0.0.0.0:9000") == ("0.0.0.0", 9000)
    assert parse_address("[::1]:9000") == ("::1", 9000)
    with pytest.raises(EdgekitError, match="HOST:PORT"):
        parse_address("localhost:http")


def test_folder_source_plays_in_name_order_with_size_changes(tmp_path, coral):
    # Two pictures of different sizes: the second frame changes the size, and the folder then ends.
    images.load_image(coral("cat.bmp")).save(tmp_path / "a.png")
    images.load_image(coral("parrot.jpg")).save(tmp_path / "b.png")
    (tmp_path / "notes.txt").write_text("not an image")
    grabber = FrameGrabber(parse_source(str(tmp_path))).start()
    frames = list(grabber.frames())
    grabber.join(5)
    assert [f.index for f in frames] == [0, 1]
    assert frames[0].image.shape == (341, 512, 3) and frames[1].image.shape == (929, 512, 3)
    assert grabber.size_changes == 1 and grabber.ended == "end" and grabber.dropped == 0
    # Frames are BGR, as OpenCV reads them: the folder reader matches cv2.imread.
    assert np.array_equal(frames[0].image, cv2.imread(str(tmp_path / "a.png")))


def test_empty_folder_is_a_clear_error(tmp_path):
    with pytest.raises(EdgekitError, match="no images"):
        FrameGrabber(parse_source(str(tmp_path)))


def test_unreadable_video_is_a_clear_error(tmp_path):
    bad = tmp_path / "clip.mp4"
    bad.write_bytes(b"not a video at all")
    with pytest.raises(EdgekitError, match="OpenCV cannot read this video"):
        FrameGrabber(parse_source(str(bad)))


def test_recorder_scales_a_changed_size_and_renames_on_close(tmp_path):
    target = tmp_path / "out.mp4"
    recorder = Recorder(target, fps=10)
    for i in range(6):
        size = (160, 120) if i < 3 else (200, 100)
        recorder.write(np.full((size[1], size[0], 3), 40 * i, np.uint8))
    assert not target.exists() and recorder.temp_path.endswith(".mp4")  # nothing under the name until close
    assert recorder.close() == str(target)
    assert recorder.resized == 3 and not any(p.name.startswith(".") for p in tmp_path.iterdir())
    capture = cv2.VideoCapture(str(target))
    count = 0
    while capture.read()[0]:
        count += 1
    assert count == 6
    assert (capture.get(cv2.CAP_PROP_FRAME_WIDTH), capture.get(cv2.CAP_PROP_FRAME_HEIGHT)) == (160, 120)


def test_recorder_follows_the_capture_clock_of_live_frames(tmp_path):
    recorder = Recorder(tmp_path / "live.mp4", fps=10)
    shades = {100.0: 0, 100.05: 60, 100.5: 120, 101.0: 180, 130.0: 240}
    for at, shade in shades.items():  # then: too early, 0.45 s late, 0.5 s late, after a 29 s gap
        recorder.write(np.full((120, 160, 3), shade, np.uint8), at=at)
    # 1 (first) + 0 (early: skipped) + 5 (0.5 s at 10 fps) + 5 + 1 (after a gap: no frozen 29 s)
    assert recorder.frames == 12
    recorder.close()
    capture = cv2.VideoCapture(str(tmp_path / "live.mp4"))
    seen = []
    while True:
        ok, image = capture.read()
        if not ok:
            break
        seen.append(int(round(image.mean() / 60)) * 60)
    # Each picture holds until the next one's time: the first for 0.5 s, and so on.
    assert seen == [0] * 5 + [120] * 5 + [180, 240]


def test_recorder_without_frames_leaves_nothing(tmp_path):
    recorder = Recorder(tmp_path / "out.mp4")
    assert recorder.close() is None and list(tmp_path.iterdir()) == []
    with pytest.raises(EdgekitError, match=r"\.mp4"):
        Recorder(tmp_path / "out.avi")


def test_fast_classifier_resize_stays_within_one_of_tflite_bilinear(coral):
    # make_prepare resizes with cv2 (see its docstring): the same sampling, integer rounding.
    bgr = cv2.imread(str(coral("parrot.jpg")))
    fast = cv2.cvtColor(cv2.resize(bgr, (224, 224), interpolation=cv2.INTER_LINEAR), cv2.COLOR_BGR2RGB)
    exact = np.asarray(images.resize(bgr_to_pil(bgr), (224, 224), "tflite-bilinear"))
    assert np.abs(fast.astype(int) - exact.astype(int)).max() <= 1


def test_overlay_draws_classes_and_a_status_bar():
    bgr = np.full((240, 320, 3), 90, np.uint8)
    result = ImageResult("", None, (320, 240), 12.5, {}, CLASSIFICATION, classes=[Class(286, 0.8)])
    drawn = annotate_frame(bgr, result, {286: "Egyptian cat"}, fps=30.0)
    assert drawn.shape == bgr.shape
    rgb = drawn[:, :, ::-1].reshape(-1, 3).astype(int)
    amber = np.all(np.abs(rgb - STATUS_COLOR) <= 8, axis=1).sum()
    assert amber >= 320 * 8  # a bar across the bottom
    assert (drawn[:20, :60] == 0).any()  # the class caption's black box, top left


@pytest.mark.parametrize("size", [(480, 640), (24, 40)])
def test_overlay_draws_classes_on_the_corner_exactly_as_on_the_whole_frame(coral, size):
    """The camera draws class lines on the top-left crop only; the pixels are those of drawing on the whole
    frame (annotate.draw_classes, what `edgekit run` saves), for a frame smaller than the lines too."""
    from edgekit.runtime import annotate
    from edgekit.runtime.camera.overlay import draw_status, pil_to_bgr, status_text

    bgr = cv2.resize(cv2.imread(str(coral("parrot.jpg"))), size[::-1])
    labels = {88: "macaw", 1: "a much longer label, with a comma", 2: "x"}
    classes = [Class(88, 0.97), Class(1, 0.02), Class(2, 0.01)]
    result = ImageResult("", None, size[::-1], 9.5, {}, CLASSIFICATION, classes=classes)
    whole = draw_status(pil_to_bgr(annotate.draw_classes(bgr_to_pil(bgr), classes, labels)),
                        status_text(20.0, 9.5, 3))
    np.testing.assert_array_equal(annotate_frame(bgr, result, labels, fps=20.0, dropped=3), whole)


def test_server_is_wanted_only_while_someone_watches():
    import urllib.request

    from edgekit.runtime.camera import MjpegServer

    with MjpegServer("127.0.0.1", 0) as server:
        server.publish(np.zeros((8, 8, 3), np.uint8), frame=0)
        assert not server.wanted()  # nobody has asked: the camera loop skips drawing
        got = []
        viewer = threading.Thread(target=lambda: got.append(
            urllib.request.urlopen(server.url + "frame.jpg", timeout=30).read()))
        viewer.start()
        for _ in range(3000):  # the request marks the demand before it waits for a new frame
            if server.wanted():
                break
            threading.Event().wait(0.01)
        assert server.wanted()
        server.publish(np.full((8, 8, 3), 200, np.uint8), frame=1)
        viewer.join(30)
        picture = cv2.imdecode(np.frombuffer(got[0], np.uint8), cv2.IMREAD_COLOR)
        assert picture.mean() > 150  # the frame published after the request, not the stale one

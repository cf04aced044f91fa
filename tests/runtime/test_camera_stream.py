"""Streams both ways on loopback: the MJPEG preview, an HTTP camera as the source, reconnects, Chromium.

The "network camera" is edgekit's own MjpegServer fed with a still picture: OpenCV's FFmpeg reads it
like any MJPEG IP camera. Every wait is bounded by PATIENCE_S and asserts an outcome, never a speed.
"""

import json
import queue
import subprocess
import threading
import time
import urllib.request

import cv2
import numpy as np
import pytest
from browser import CHROMIUM_FLAGS, chromium
from fake_camera import FakeCamera
from click.testing import CliRunner
from PIL import Image

from edgekit.cli import cli
from edgekit.runtime.camera import STATUS_COLOR, Backoff, CameraSession

pytestmark = pytest.mark.usefixtures("no_edgetpu_library")

MODEL = "mobilenet_v2_1.0_224_quant.tflite"
PATIENCE_S = 60


@pytest.fixture
def cameras():
    """Factory: cameras(picture, port=0) -> a running FakeCamera, closed after the test."""
    started = []

    def start(path, port=0):
        camera = FakeCamera(path, port)
        started.append(camera)
        return camera

    yield start
    for camera in started:
        camera.close()


class Background:
    """A CameraSession run in a thread, with each frame's top class id and the summary collected."""

    def __init__(self, model, source, **options):
        self.top = queue.Queue()
        self.session = CameraSession(str(model), source, device="cpu", on_frame=self._on_frame, **options)
        self.summary = None
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _on_frame(self, frame, result, fps):
        self.top.put(result.classes[0].id if result.classes else None)

    def _run(self):
        self.summary = self.session.run()

    def wait_for(self, class_id, frames=1):
        """Block until `frames` frames in a row had `class_id` on top; the ids seen before then."""
        seen, run = [], 0
        deadline = time.monotonic() + PATIENCE_S
        while run < frames:
            got = self.top.get(timeout=max(0.1, deadline - time.monotonic()))
            seen.append(got)
            run = run + 1 if got == class_id else 0
        return seen

    def stop(self):
        self.session.stop()
        self.thread.join(PATIENCE_S)
        assert not self.thread.is_alive()
        return self.summary


def read_mjpeg_parts(url, count):
    """The first `count` JPEG parts of a multipart stream, with each part's Content-Type."""
    parts = []
    with urllib.request.urlopen(url, timeout=PATIENCE_S) as response:
        assert response.headers["Content-Type"].startswith("multipart/x-mixed-replace; boundary=")
        while len(parts) < count:
            boundary = response.readline().strip()
            if not boundary:
                continue
            assert boundary.startswith(b"--")
            headers = {}
            for line in iter(response.readline, b"\r\n"):
                name, _, value = line.decode().partition(":")
                headers[name.strip().lower()] = value.strip()
            parts.append((headers["content-type"], response.read(int(headers["content-length"]))))
    return parts


def amber_pixels(rgb):
    pixels = np.asarray(rgb, dtype=int).reshape(-1, 3)
    return int(np.all(np.abs(pixels - STATUS_COLOR) <= 40, axis=1).sum())


def test_preview_serves_annotated_jpeg_frames(cameras, coral):
    camera = cameras(coral("cat.bmp"))
    run = Background(coral(MODEL), camera.url, serve="127.0.0.1:0")
    try:
        run.wait_for(286)
        base = run.session.server.url
        parts = read_mjpeg_parts(base + "stream.mjpg", 2)
        for kind, data in parts:
            assert kind == "image/jpeg" and data[:2] == b"\xff\xd8"
            frame = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR)
            assert frame.shape == (240, 320, 3)
            assert amber_pixels(frame[:, :, ::-1]) >= 320 * 8  # the status bar is drawn in
        with urllib.request.urlopen(base + "frame.jpg", timeout=PATIENCE_S) as response:
            assert response.headers["Content-Type"] == "image/jpeg" and response.read(2) == b"\xff\xd8"
        with urllib.request.urlopen(base + "stats", timeout=PATIENCE_S) as response:
            stats = json.loads(response.read())
        assert stats["frame"] >= 0 and stats["latency_ms"] > 0
        with urllib.request.urlopen(base, timeout=PATIENCE_S) as response:
            page = response.read().decode()
        assert "/stream.mjpg" in page and "/stats" in page and "FPS" in page
    finally:
        summary = run.stop()
    assert summary.source_kind == "stream" and summary.frames > 0 and summary.ended == "stopped"


def test_cli_reads_an_http_camera(cameras, coral):
    camera = cameras(coral("parrot.jpg"))
    result = CliRunner().invoke(cli, ["camera", str(coral(MODEL)), "--source", camera.url, "--device", "cpu",
                                      "--labels", str(coral("imagenet_labels.txt")), "--max-frames", "5", "--json"])
    assert result.exit_code == 0, result.output
    lines = [json.loads(line) for line in result.stdout.splitlines()]
    assert len(lines) == 5 and all(line["classes"][0]["label"] == "macaw" for line in lines)
    assert "ended: max frames" in result.stderr


def test_a_dropped_stream_reconnects(cameras, coral):
    first = cameras(coral("cat.bmp"))
    run = Background(coral(MODEL), first.url, backoff=Backoff(0.05, 0.2))
    try:
        run.wait_for(286, frames=3)
        first.close()
        # The same address comes back showing something else: frames resume after a reconnect.
        cameras(coral("parrot.jpg"), port=first.port)
        seen = run.wait_for(89, frames=3)
    finally:
        summary = run.stop()
    assert set(seen) <= {286, 89}
    assert summary.reconnects >= 1 and summary.ended == "stopped"


def test_a_stream_that_never_comes_back_ends_as_lost(cameras, coral):
    camera = cameras(coral("cat.bmp"))
    run = Background(coral(MODEL), camera.url, backoff=Backoff(0.05, 0.1, attempts=3))
    run.wait_for(286)
    camera.close()
    run.thread.join(PATIENCE_S)
    assert run.summary.ended == "lost" and run.summary.reconnects == 0


def test_browser_page_shows_an_annotated_frame(cameras, coral, tmp_path):
    browser = chromium("the browser preview test")
    camera = cameras(coral("cat.bmp"))
    run = Background(coral(MODEL), camera.url, serve="127.0.0.1:0", labels_path=coral("imagenet_labels.txt"))
    shot = tmp_path / "page.png"
    try:
        run.wait_for(286, frames=2)
        command = [browser, *CHROMIUM_FLAGS, "--hide-scrollbars", f"--user-data-dir={tmp_path / 'profile'}", "--window-size=800,600",
                   f"--screenshot={shot}", run.session.server.url]
        done = subprocess.run(command, capture_output=True, text=True, timeout=PATIENCE_S * 2)
    finally:
        run.stop()
    assert done.returncode == 0 and shot.exists(), done.stderr[-2000:]
    page = np.asarray(Image.open(shot).convert("RGB"))
    assert page.shape[:2] == (600, 800)
    # Not blank: the frame's picture is there, with the status bar drawn across its bottom (the page
    # itself uses no amber), above the dark page background.
    assert page.std() > 20
    assert amber_pixels(page) >= 320 * 8
    rows = np.nonzero(np.all(np.abs(page.astype(int) - STATUS_COLOR) <= 40, axis=2).sum(axis=1) > 200)[0]
    assert rows.size >= 8 and page[: rows.min()].std() > 20  # the cat above the bar

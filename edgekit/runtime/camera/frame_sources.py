"""Where frames come from: read a `--source`, open it with OpenCV, and explain a failure in one line.

Kinds of source:
- camera: an index ("0") or a device path ("/dev/video2");
- stream: a URL (rtsp://, http://, udp://, ...), read by OpenCV's FFmpeg;
- gstreamer: a pipeline string (it contains "!"), for OpenCV builds with GStreamer;
- file: a video file; folder: a folder of images, played in name order.
Cameras, streams and pipelines are live: when they drop, the capture thread reconnects. Files and
folders end.
"""

import contextlib
import glob
import os
import re
import sys
from collections import namedtuple

import numpy as np

from edgekit.errors import EdgekitError
from edgekit.image_folders import IMAGE_SUFFIXES, is_image_file
from edgekit.runtime import images

Source = namedtuple("Source", "kind target live text")

LIVE_KINDS = ("camera", "stream", "gstreamer")
_URL = re.compile(r"^[a-z][a-z0-9+.-]*://", re.IGNORECASE)
# A stream that stops answering must not hang the capture thread for ever: after this long OpenCV's
# FFmpeg gives up, and the reconnect logic takes over.
STREAM_TIMEOUT_MS = 5000


def _cv2():
    try:
        import cv2
    except ImportError:
        raise EdgekitError("the camera needs OpenCV: pip install 'edgekit[camera]' "
                           "(or opencv-python for --display)") from None
    return cv2


def parse_source(text):
    """A `Source` for what the user typed; files and folders must exist, cameras are checked on open."""
    text = str(text).strip()
    if not text:
        raise EdgekitError("--source is empty: give a camera index, /dev/videoN, a file, a folder or a URL")
    if text.isdigit():
        return Source("camera", int(text), True, text)
    if text.startswith("/dev/video"):
        return Source("camera", text, True, text)
    if _URL.match(text):
        return Source("stream", text, True, text)
    if "!" in text:
        return Source("gstreamer", text, True, text)
    if os.path.isdir(text):
        return Source("folder", text, False, text)
    if os.path.isfile(text):
        return Source("file", text, False, text)
    raise EdgekitError(f"{text}: no such video file or folder (for a camera give its index or /dev/videoN, "
                       "for a stream its URL)")


def list_video_devices():
    """[(path, name)] of the video devices this machine shows (/dev/video*), in number order."""
    found = []
    for path in glob.glob("/dev/video*"):
        suffix = path[len("/dev/video"):]
        if not suffix.isdigit():
            continue
        name = ""
        with contextlib.suppress(OSError):
            with open(f"/sys/class/video4linux/video{suffix}/name", encoding="utf-8") as f:
                name = f.read().strip()
        found.append((int(suffix), path, name))
    return [(path, name) for _, path, name in sorted(found)]


def devices_text():
    """"video devices found: /dev/video0 (USB Camera), ..." or the reason there is none."""
    devices = list_video_devices()
    if not devices:
        return "video devices found: none (no /dev/video*: is the camera plugged in and its driver loaded?)"
    return "video devices found: " + ", ".join(f"{path} ({name})" if name else path for path, name in devices)


def _device_path(target):
    return f"/dev/video{target}" if isinstance(target, int) else target


def open_source(source):
    """An open reader for `source`: `.read() -> (ok, bgr)`, `.release()`, `.fps` (0.0 when unknown)."""
    if source.kind == "folder":
        return FolderReader(source.target)
    cv2 = _cv2()
    if source.kind == "camera":
        return _open_camera(cv2, source)
    if source.kind == "gstreamer":
        return _open_gstreamer(cv2, source)
    if source.kind == "stream":
        params = [cv2.CAP_PROP_OPEN_TIMEOUT_MSEC, STREAM_TIMEOUT_MS, cv2.CAP_PROP_READ_TIMEOUT_MSEC,
                  STREAM_TIMEOUT_MS]
        capture = _quiet_open(cv2, source.target, cv2.CAP_FFMPEG, params)
        if not capture.isOpened():
            raise EdgekitError(f"{source.text}: cannot open the stream (no answer within "
                               f"{STREAM_TIMEOUT_MS / 1000:.0f} s, or a format OpenCV's FFmpeg cannot read)")
        return CaptureReader(capture)
    capture = _quiet_open(cv2, source.target, cv2.CAP_ANY)
    if not capture.isOpened():
        raise EdgekitError(f"{source.text}: OpenCV cannot read this video (a container or codec its FFmpeg "
                           "lacks?): convert it to MP4 (H.264) or give a folder of images")
    return CaptureReader(capture)


def _open_camera(cv2, source):
    path = _device_path(source.target)
    linux = sys.platform.startswith("linux")
    if linux and not os.path.exists(path):
        raise EdgekitError(f"no camera at {source.text} ({path} does not exist); {devices_text()}")
    # V4L2 on Linux: the FFmpeg backend in pip's OpenCV cannot open capture devices at all. Elsewhere
    # (no /dev/video*), OpenCV's own choice for an index.
    target = source.target if isinstance(source.target, int) else path
    capture = _quiet_open(cv2, target, cv2.CAP_V4L2 if linux else cv2.CAP_ANY)
    if not capture.isOpened():
        raise EdgekitError(f"cannot open the camera {source.text} (busy in another program, no permission, or "
                           f"not a capture device); {devices_text()}")
    return CaptureReader(capture)


def _open_gstreamer(cv2, source):
    if "GStreamer:                   YES" not in cv2.getBuildInformation():
        raise EdgekitError("this OpenCV was built without GStreamer (pip's opencv-python wheels are), so a "
                           "pipeline cannot be opened: use Debian's python3-opencv, or give a device or URL")
    capture = _quiet_open(cv2, source.target, cv2.CAP_GSTREAMER)
    if not capture.isOpened():
        raise EdgekitError(f"GStreamer cannot start the pipeline '{source.text}': check it with gst-launch-1.0 "
                           "and end it with 'appsink'")
    return CaptureReader(capture)


def _quiet_open(cv2, target, backend, params=None):
    """cv2.VideoCapture without OpenCV's own WARN lines: our error says it once, and better."""
    from cv2.utils import logging as cv_logging

    level = cv_logging.getLogLevel()
    cv_logging.setLogLevel(cv_logging.LOG_LEVEL_ERROR)
    try:
        return cv2.VideoCapture(target, backend, params or [])
    finally:
        cv_logging.setLogLevel(level)


class CaptureReader:
    """An opened cv2.VideoCapture with the small interface the capture thread uses."""

    def __init__(self, capture):
        self.capture = capture
        fps = capture.get(5)  # CAP_PROP_FPS; cameras and streams often report 0 or nonsense
        self.fps = float(fps) if 0 < fps <= 240 else 0.0

    def read(self):
        return self.capture.read()

    def release(self):
        self.capture.release()


class FolderReader:
    """The images of a folder in name order, decoded like `edgekit run` does (EXIF, alpha, 16-bit)."""

    fps = 0.0

    def __init__(self, folder):
        self.paths = sorted(os.path.join(folder, name) for name in os.listdir(folder)
                            if is_image_file(name) and not name.startswith("."))
        if not self.paths:
            raise EdgekitError(f"{folder}: no images ({' '.join(IMAGE_SUFFIXES)}) in this folder")
        self.position = 0

    def read(self):
        if self.position >= len(self.paths):
            return False, None
        picture = images.load_image(self.paths[self.position], "RGB")
        self.position += 1
        # OpenCV's channel order, like every other source.
        return True, np.ascontiguousarray(np.asarray(picture)[:, :, ::-1])

    def release(self):
        self.position = len(self.paths)

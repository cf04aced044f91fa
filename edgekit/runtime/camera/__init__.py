"""Live classification and detection from a camera, a file or a stream, with a browser preview.

    from edgekit.runtime.camera import run_camera
    summary = run_camera("model.tflite", "/dev/video0", labels_path="labels.txt", serve="127.0.0.1:8080")

The parts compose on their own too (see examples/camera_classify.py): `FrameGrabber` (capture thread,
newest-frame handoff), `annotate_frame` (overlay), `Recorder` (atomic MP4), `MjpegServer` (preview).
Needs OpenCV (`pip install 'edgekit[camera]'`); never imports TensorFlow.

The names below load their module on first use (PEP 562's module `__getattr__`), so that code needing
only OpenCV-free parts, such as `capture.Backoff`'s defaults for the CLI's options, imports without cv2.
"""

import importlib

# name -> the module of this package that defines it
_EXPORTS = {
    "Backoff": "capture", "Frame": "capture", "FrameGrabber": "capture", "FrameSlot": "capture",
    "STATUS_COLOR": "overlay", "annotate_frame": "overlay", "bgr_to_pil": "overlay", "pil_to_bgr": "overlay",
    "Recorder": "recorder",
    "MjpegServer": "server", "parse_address": "server",
    "CameraSession": "session", "CameraSummary": "session", "FpsMeter": "session", "make_prepare": "session",
    "run_camera": "session",
    "Source": "frame_sources", "devices_text": "frame_sources", "list_video_devices": "frame_sources",
    "open_source": "frame_sources", "parse_source": "frame_sources",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name):
    if name not in _EXPORTS:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(f".{_EXPORTS[name]}", __name__), name)
    globals()[name] = value  # found directly from now on
    return value


def __dir__():
    return sorted(set(globals()) | set(_EXPORTS))

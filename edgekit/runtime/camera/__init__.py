"""Live classification and detection from a camera, a file or a stream, with a browser preview.

    from edgekit.runtime.camera import run_camera
    summary = run_camera("model.tflite", "/dev/video0", labels_path="labels.txt", serve="127.0.0.1:8080")

The parts compose on their own too (see examples/camera_classify.py): `FrameGrabber` (capture thread,
newest-frame handoff), `annotate_frame` (overlay), `Recorder` (atomic MP4), `MjpegServer` (preview).
Needs OpenCV (`pip install 'edgekit[camera]'`); never imports TensorFlow.
"""

from edgekit.runtime.camera.capture import Backoff, Frame, FrameGrabber, FrameSlot
from edgekit.runtime.camera.overlay import STATUS_COLOR, annotate_frame, bgr_to_pil, pil_to_bgr
from edgekit.runtime.camera.recorder import Recorder
from edgekit.runtime.camera.server import MjpegServer, parse_address
from edgekit.runtime.camera.session import CameraSession, FpsMeter, make_prepare, run_camera
from edgekit.runtime.camera.sources import Source, devices_text, list_video_devices, open_source, parse_source

__all__ = ["Backoff", "CameraSession", "FpsMeter", "Frame", "FrameGrabber", "FrameSlot", "MjpegServer",
           "Recorder", "STATUS_COLOR", "Source", "annotate_frame", "bgr_to_pil", "devices_text",
           "list_video_devices", "make_prepare", "open_source", "parse_address", "parse_source", "pil_to_bgr",
           "run_camera"]

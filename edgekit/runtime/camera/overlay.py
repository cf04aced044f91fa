"""What a camera frame looks like annotated: the model's results (annotate.py draws them) and a status bar.

Frames travel as OpenCV's BGR arrays; annotate.py draws on PIL RGB images. The conversions live here.
"""

import cv2
import numpy as np
from PIL import Image

from edgekit.runtime import annotate
from edgekit.runtime.tasks import CLASSIFICATION, DETECTION, SEGMENTATION

# The status bar's colour (RGB): a saturated amber that no result drawing uses, so a test (or a person)
# can find the bar in a screenshot.
STATUS_COLOR = (255, 176, 0)
STATUS_INK = (0, 0, 0)


def bgr_to_pil(image):
    """A BGR uint8 array as a PIL RGB image (a copy: the capture buffer is never shared).

    cv2.cvtColor rather than numpy's [..., ::-1]: copying a reversed (negative-stride) view goes element by
    element, where cvtColor runs vectorised code, and this runs on every frame, on the cores the
    interpreter's threads need (benchmarks/bench_camera.py measures the camera loop).
    """
    return Image.fromarray(cv2.cvtColor(image, cv2.COLOR_BGR2RGB), "RGB")


def pil_to_bgr(image):
    if image.mode != "RGB":
        image = image.convert("RGB")  # convert() copies even when the mode is already right
    return cv2.cvtColor(np.asarray(image), cv2.COLOR_RGB2BGR)


def status_text(fps, latency_ms, dropped=0):
    text = f"{fps:.1f} FPS  invoke {latency_ms:.1f} ms"
    return text + (f"  dropped {dropped}" if dropped else "")


def draw_results(image, result, labels=None):
    """`image` (PIL) with whatever the `ImageResult` holds: classes, detected objects, or a mask."""
    if result.task == DETECTION:
        return annotate.draw_objects(image, result.objects, labels)
    if result.task == SEGMENTATION:
        return annotate.overlay_mask(image, result.mask)
    return annotate.draw_classes(image, result.classes, labels)


def draw_status(bgr, text):
    """A full-width bar along the bottom of a BGR frame (drawn in place) with `text` in it.

    Drawn with OpenCV on the array, after the results: no PIL round trip of the whole frame, which would
    convert and copy every pixel twice, on every frame.
    """
    height, width = bgr.shape[:2]
    scale = max(0.4, height / 1000.0)
    (text_w, text_h), baseline = cv2.getTextSize(text, cv2.FONT_HERSHEY_SIMPLEX, scale, 1)
    bar = max(text_h + baseline + 8, height // 24)
    cv2.rectangle(bgr, (0, height - bar), (width, height), STATUS_COLOR[::-1], thickness=-1)
    cv2.putText(bgr, text, (4, height - (bar - text_h) // 2), cv2.FONT_HERSHEY_SIMPLEX, scale, STATUS_INK[::-1],
                1, cv2.LINE_AA)
    return bgr


def annotate_frame(bgr, result, labels=None, fps=0.0, dropped=0):
    """The annotated frame as a BGR array, ready for the recorder, the browser and the window.

    `result` is the frame's `pipeline.ImageResult`; `labels` name its class ids.
    """
    status = status_text(fps, result.latency_ms, dropped)
    if result.task != CLASSIFICATION:
        return draw_status(pil_to_bgr(draw_results(bgr_to_pil(bgr), result, labels)), status)
    # Class lines fill only the top-left corner: drawn on that crop, not on a PIL copy of the whole frame,
    # they change the same pixels for a fraction of the work, which the output thread shares with inference.
    out = bgr.copy()
    captions = annotate.class_captions(result.classes, labels)
    width, height = annotate.captions_corner(captions)
    width, height = min(width, out.shape[1]), min(height, out.shape[0])
    if width and height:
        out[:height, :width] = pil_to_bgr(annotate.draw_captions(bgr_to_pil(out[:height, :width]), captions))
    return draw_status(out, status)

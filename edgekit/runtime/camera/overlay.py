"""What a camera frame looks like annotated: the model's results (annotate.py draws them) and a status bar.

Frames travel as OpenCV's BGR arrays; annotate.py draws on PIL RGB images. The conversions live here.
"""

import cv2
import numpy as np
from PIL import Image, ImageDraw, ImageFont

from edgekit.runtime import annotate

# The status bar's colour (RGB): a saturated amber that no result drawing uses, so a test (or a person)
# can find the bar in a screenshot.
STATUS_COLOR = (255, 176, 0)
STATUS_INK = (0, 0, 0)


def bgr_to_pil(image):
    """A BGR uint8 array as a PIL RGB image (a copy: the capture buffer is never shared).

    cv2.cvtColor rather than numpy's [..., ::-1]: copying a reversed view costs 10x more (2 ms a
    640x480 frame), CPU the interpreter's threads need on a two-core board.
    """
    return Image.fromarray(cv2.cvtColor(image, cv2.COLOR_BGR2RGB), "RGB")


def pil_to_bgr(image):
    return cv2.cvtColor(np.asarray(image.convert("RGB")), cv2.COLOR_RGB2BGR)


def status_text(fps, latency_ms, dropped=0):
    text = f"{fps:.1f} FPS  invoke {latency_ms:.1f} ms"
    return text + (f"  dropped {dropped}" if dropped else "")


def draw_results(image, result, labels=None):
    """`image` (PIL) with whatever the result holds: classes, detected objects, or a mask."""
    if "_found" in result:
        return annotate.draw_objects(image, result["_found"], labels)
    if "_mask" in result:
        return annotate.overlay_mask(image, result["_mask"])
    return annotate.draw_classes(image, result.get("classes", []))


def draw_status(image, text):
    """A full-width bar along the bottom of `image` (PIL, drawn in place) with `text` in it."""
    draw = ImageDraw.Draw(image)
    font = ImageFont.load_default()
    left, top, right, bottom = draw.textbbox((0, 0), text, font=font)
    height = max(bottom - top + 8, image.height // 24)
    y = image.height - height
    draw.rectangle((0, y, image.width, image.height), fill=STATUS_COLOR)
    draw.text((4, y + (height - (bottom - top)) // 2 - top), text, fill=STATUS_INK, font=font)
    return image


def annotate_frame(bgr, result, labels=None, fps=0.0, dropped=0):
    """The annotated frame as a BGR array, ready for the recorder, the browser and the window."""
    picture = draw_results(bgr_to_pil(bgr), result, labels)
    draw_status(picture, status_text(fps, result.get("latency_ms", 0.0), dropped))
    return pil_to_bgr(picture)

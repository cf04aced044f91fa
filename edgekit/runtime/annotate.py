"""Draw results on images: detection boxes with labels and scores, colour overlays for masks.

Everything returns a new image; `save_image` writes atomically (edgekit.files), so an interrupted run
never leaves half an image where the user expects one.
"""

import os

import numpy as np
from PIL import Image, ImageDraw, ImageFont

from edgekit.errors import EdgekitError
from edgekit.files import atomic_path
from edgekit.runtime.labels import label_name

_FORMATS = {".jpg": "JPEG", ".jpeg": "JPEG", ".png": "PNG", ".bmp": "BMP", ".webp": "WEBP",
            ".tif": "TIFF", ".tiff": "TIFF", ".gif": "GIF"}


def pascal_colormap(n=256):
    """The PASCAL VOC palette: class id -> RGB, built from the bits of the id (uint8 [n, 3])."""
    colormap = np.zeros((n, 3), dtype=np.int64)
    ids = np.arange(n)
    for shift in reversed(range(8)):
        for channel in range(3):
            colormap[:, channel] |= ((ids >> channel) & 1) << shift
        ids = ids >> 3
    return colormap.astype(np.uint8)


def color_mask(mask):
    """A class mask [H, W] as an RGB image in PASCAL colours (ids above 255 wrap)."""
    mask = np.asarray(mask).astype(np.int64) % 256
    return Image.fromarray(pascal_colormap()[mask], "RGB")


def overlay_mask(image, mask, alpha=0.5):
    """`image` with the mask's colours blended in at `alpha`; background (id 0) left untouched.

    The mask is stretched to the image (nearest neighbour) when their sizes differ.
    """
    image = image.convert("RGB")
    colors = color_mask(mask)
    if colors.size != image.size:
        colors = colors.resize(image.size, Image.Resampling.NEAREST)
    blended = Image.blend(image, colors, alpha)
    foreground = Image.fromarray((np.asarray(mask) != 0).astype(np.uint8) * 255, "L")
    if foreground.size != image.size:
        foreground = foreground.resize(image.size, Image.Resampling.NEAREST)
    return Image.composite(blended, image, foreground)


def _box_color(class_id):
    # Skip the palette's black (id 0) so every box is visible.
    return tuple(int(v) for v in pascal_colormap()[(int(class_id) % 255) + 1])


def caption(obj, labels=None):
    """The text drawn above a box: "label 0.87", or the label alone for a box with no score (ground truth)."""
    if obj.score is None:
        return label_name(labels, obj.id)
    return f"{label_name(labels, obj.id)} {obj.score:.2f}"


def draw_objects(image, objects, labels=None, width=None):
    """A copy of `image` (RGB) with each `Object` boxed and captioned; boxes are clipped to the image."""
    image = image.convert("RGB")
    draw = ImageDraw.Draw(image)
    font = ImageFont.load_default()
    width = width or max(1, round(min(image.size) / 200))
    for obj in objects:
        color = _box_color(obj.id)
        box = _clip(obj.bbox, image.size)
        draw.rectangle(box, outline=color, width=width)
        text = caption(obj, labels)
        left, top, right, bottom = draw.textbbox((0, 0), text, font=font)
        x, y = box[0], max(0, box[1] - (bottom - top) - 2)
        draw.rectangle((x, y, x + right - left + 2, y + bottom - top + 2), fill=color)
        ink = (0, 0, 0) if sum(color) > 382 else (255, 255, 255)  # readable on light and dark boxes
        draw.text((x + 1, y + 1 - top), text, fill=ink, font=font)
    return image


def class_captions(classes, labels=None):
    """[(text, background box, text origin)] of the "label score" lines `draw_classes` writes, top to bottom,
    for `classify.Class` tuples named through `labels`."""
    font = ImageFont.load_default()
    captions, y = [], 2
    for c in classes:
        text = f"{label_name(labels, c.id)} {c.score:.2f}"
        left, top, right, bottom = font.getbbox(text)
        captions.append((text, (2, y, 6 + right - left, y + bottom - top + 4), (4, y + 2 - top)))
        y += bottom - top + 6
    return captions


def draw_captions(image, captions):
    """A copy of `image` (RGB) with `class_captions` drawn: white text on black boxes, top left."""
    image = image.convert("RGB")
    draw = ImageDraw.Draw(image)
    font = ImageFont.load_default()
    for text, box, origin in captions:
        draw.rectangle(box, fill=(0, 0, 0))
        draw.text(origin, text, fill=(255, 255, 255), font=font)
    return image


def draw_classes(image, classes, labels=None):
    """A copy of `image` (RGB) with one "label score" line per class in the top-left corner."""
    return draw_captions(image, class_captions(classes, labels))


def captions_corner(captions):
    """(width, height) of the top-left corner `draw_captions` draws in: every pixel it changes lies inside,
    so a caller may draw on that crop alone (the camera does, on every frame). (0, 0) for no captions."""
    if not captions:
        return 0, 0
    return max(box[2] for _, box, _ in captions) + 1, captions[-1][1][3] + 1


def _clip(bbox, size):
    w, h = size
    xmin, ymin = min(max(bbox.xmin, 0), w - 1), min(max(bbox.ymin, 0), h - 1)
    xmax, ymax = min(max(bbox.xmax, xmin), w - 1), min(max(bbox.ymax, ymin), h - 1)
    return (xmin, ymin, xmax, ymax)


def is_savable_image_name(path):
    """True when `path` ends in a suffix `save_image` can write (so it names a picture, not a folder)."""
    return os.path.splitext(os.fspath(path))[1].lower() in _FORMATS


def save_image(img, path):
    """Write `img` to `path` atomically; the format comes from the extension."""
    path = os.fspath(path)
    ext = os.path.splitext(path)[1].lower()
    if ext not in _FORMATS:
        raise EdgekitError(f"{path}: cannot tell the image format from '{ext or 'no extension'}': "
                           f"use one of {', '.join(sorted(_FORMATS))}")
    if _FORMATS[ext] in ("JPEG", "BMP") and img.mode not in ("RGB", "L"):
        img = img.convert("RGB")  # these formats hold no alpha
    folder = os.path.dirname(os.path.abspath(path))
    if not os.path.isdir(folder):
        raise EdgekitError(f"{path}: the folder {folder} does not exist")
    with atomic_path(path) as temporary:
        img.save(temporary, format=_FORMATS[ext])
    return path

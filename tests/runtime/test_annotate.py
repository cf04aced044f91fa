"""Annotation: boxes and captions land where the objects are, overlays colour only the classes, saves
are atomic."""

import os

import numpy as np
import pytest
from PIL import Image

from edgekit.errors import EdgekitError
from edgekit.runtime import annotate
from edgekit.runtime.adapters.classify import Class
from edgekit.runtime.adapters.detect import BBox, Object

GREY = (60, 60, 60)


def test_pascal_palette():
    colors = annotate.pascal_colormap()
    assert colors.shape == (256, 3) and colors.dtype == np.uint8
    assert colors[:4].tolist() == [[0, 0, 0], [128, 0, 0], [0, 128, 0], [128, 128, 0]]
    assert colors[15].tolist() == [192, 128, 128]   # person
    assert len({tuple(c) for c in colors[:21]}) == 21


def test_draw_objects_boxes_and_captions():
    image = Image.new("RGB", (200, 120), GREY)
    drawn = annotate.draw_objects(image, [Object(3, 0.87, BBox(40, 50, 160, 110))], {3: "bird"})
    pixels = np.asarray(drawn)
    color = annotate._box_color(3)
    assert tuple(pixels[80, 40]) == color and tuple(pixels[80, 160]) == color   # left and right edges
    assert tuple(pixels[80, 100]) == GREY                                       # inside untouched
    strip = pixels[41:49, 42:80].reshape(-1, 3)                                 # caption strip above
    assert (strip == color).all(axis=1).mean() > 0.4 and (strip.min(axis=1) > 200).any()
    assert np.asarray(image).max() == 60                                        # input not modified
    assert annotate.caption(Object(3, 0.87, None), {3: "bird"}) == "bird 0.87"
    assert annotate.caption(Object(9, 0.5, None), {3: "bird"}) == "class 9 0.50"


def test_boxes_outside_the_image_are_clipped():
    drawn = annotate.draw_objects(Image.new("RGB", (50, 40), GREY), [Object(1, 0.5, BBox(-20, -10, 400, 300))])
    pixels = np.asarray(drawn)
    assert tuple(pixels[39, 25]) == annotate._box_color(1) and tuple(pixels[20, 49]) == annotate._box_color(1)


def test_draw_classes_writes_text():
    image = Image.new("RGB", (160, 60), GREY)
    drawn = np.asarray(annotate.draw_classes(image, [Class(286, 0.8), Class(1, 0.1)], {1: "x"}))
    assert (drawn[:30, :80].min(axis=2) > 200).any() and (drawn[:, 120:] == 60).all()


def test_overlay_mask_colours_only_classes():
    image = Image.new("RGB", (40, 20), (100, 100, 100))
    mask = np.zeros((10, 20), dtype=np.int64)
    mask[:5, :10] = 1      # top-left quarter at half resolution
    out = np.asarray(annotate.overlay_mask(image, mask, alpha=0.5)).astype(int)
    assert out[2, 2].tolist() == [114, 50, 50]          # blend of grey and class 1's (128, 0, 0)
    assert out[15, 30].tolist() == [100, 100, 100]      # background untouched
    assert annotate.color_mask(mask).size == (20, 10)


def test_save_image_is_atomic(tmp_path):
    target = tmp_path / "out.png"
    annotate.save_image(Image.new("RGB", (8, 8), (1, 2, 3)), target)
    assert Image.open(target).getpixel((0, 0)) == (1, 2, 3)
    assert os.stat(target).st_mode & 0o777 == 0o644
    # A save that fails midway (a 32-bit float image cannot be a PNG) leaves the old file and no temp.
    with pytest.raises(OSError):
        annotate.save_image(Image.new("F", (8, 8)), target)
    assert Image.open(target).getpixel((0, 0)) == (1, 2, 3)
    assert sorted(os.listdir(tmp_path)) == ["out.png"]


def test_save_image_formats_and_errors(tmp_path):
    rgba = Image.new("RGBA", (8, 8), (255, 0, 0, 128))
    annotate.save_image(rgba, tmp_path / "out.jpg")     # JPEG has no alpha: converted, not refused
    assert Image.open(tmp_path / "out.jpg").format == "JPEG"
    with pytest.raises(EdgekitError, match="out.xyz: cannot tell the image format"):
        annotate.save_image(rgba, tmp_path / "out.xyz")
    with pytest.raises(EdgekitError, match="does not exist"):
        annotate.save_image(rgba, tmp_path / "missing" / "out.png")

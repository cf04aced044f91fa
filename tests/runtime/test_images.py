"""load_image on every kind of image people have, its errors, and the named resize methods."""

import io
import struct
import warnings
import zlib

import numpy as np
import pytest
from ai_edge_litert.interpreter import Interpreter
from PIL import Image

from edgekit.errors import EdgekitError
from edgekit.runtime import images
from detection_model import build_resize_model


def _png_chunk(kind, data):
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def write_png(path, width, height, bit_depth=8, color_type=2, rows=None):
    """A PNG written by hand: header-only when `rows` is None (how a bomb costs no memory here)."""
    header = struct.pack(">IIBBBBB", width, height, bit_depth, color_type, 0, 0, 0)
    body = b"" if rows is None else _png_chunk(b"IDAT", zlib.compress(b"".join(b"\0" + r for r in rows)))
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + _png_chunk(b"IHDR", header) + body + _png_chunk(b"IEND", b""))
    return path


def _one_line_naming(error, path):
    message = str(error.value)
    assert str(path) in message and "\n" not in message
    return message


# --- what loads -------------------------------------------------------------------------------

def test_bmp_rgb_and_grayscale(coral):
    cat = images.load_image(coral("cat.bmp"))
    assert (cat.mode, cat.size) == ("RGB", (512, 341))
    nine = images.load_image(coral("mnist_nine.bmp"), "L")
    assert (nine.mode, nine.size) == ("L", (28, 28))
    # A grayscale file asked for as RGB gets three equal channels.
    rgb = np.asarray(images.load_image(coral("mnist_nine.bmp")))
    assert rgb.shape == (28, 28, 3) and (rgb[..., 0] == rgb[..., 2]).all() and rgb.max() > 200


def test_jpeg_as_l_uses_luma(tmp_path):
    path = tmp_path / "red.jpg"
    Image.new("RGB", (8, 8), (255, 0, 0)).save(path, quality=100)
    gray = np.asarray(images.load_image(path, "L"))
    assert abs(int(gray.mean()) - 76) <= 2  # ITU-R 601 luma of pure red: 0.299 * 255


def test_rgba_is_composited_on_black(tmp_path):
    path = tmp_path / "alpha.png"
    pixels = np.array([[[255, 0, 0, 0], [0, 255, 0, 255], [200, 100, 50, 128]]], dtype=np.uint8)
    Image.fromarray(pixels, "RGBA").save(path)
    loaded = np.asarray(images.load_image(path)).astype(int)
    assert loaded[0, 0].tolist() == [0, 0, 0]       # fully transparent red is black, not red
    assert loaded[0, 1].tolist() == [0, 255, 0]     # opaque stays
    assert np.abs(loaded[0, 2] - [100, 50, 25]).max() <= 1


def test_palette_with_transparency_and_la(tmp_path):
    palette = Image.new("P", (2, 1))
    palette.putpalette([255, 255, 255, 0, 0, 255] + [0] * 762)
    palette.putpixel((0, 0), 0)
    palette.putpixel((1, 0), 1)
    palette.save(tmp_path / "p.png", transparency=0)
    assert np.asarray(images.load_image(tmp_path / "p.png")).tolist() == [[[0, 0, 0], [0, 0, 255]]]
    Image.new("LA", (2, 2), (200, 255)).save(tmp_path / "la.png")
    assert np.asarray(images.load_image(tmp_path / "la.png", "L")).tolist() == [[200, 200], [200, 200]]


def test_cmyk_jpeg(tmp_path):
    path = tmp_path / "cmyk.jpg"
    Image.new("CMYK", (16, 16), (0, 255, 255, 0)).save(path, quality=100)
    assert Image.open(path).mode == "CMYK"
    red = np.asarray(images.load_image(path)).astype(int).mean(axis=(0, 1))
    assert red[0] > 220 and red[1] < 40 and red[2] < 40


def test_16bit_grayscale_png_is_scaled_not_clipped(tmp_path):
    path = tmp_path / "deep.png"
    Image.fromarray(np.array([[0, 257 * 100, 65535]], dtype=np.uint16)).save(path)
    assert Image.open(path).mode in ("I;16", "I")
    assert np.asarray(images.load_image(path, "L")).tolist() == [[0, 100, 255]]
    assert np.asarray(images.load_image(path))[0, 1].tolist() == [100, 100, 100]


def test_16bit_rgb_png(tmp_path):
    row = struct.pack(">6H", 0xFFFF, 0, 0x8000, 0, 0, 0xFFFF)  # two pixels: (1, 0, .5) and blue
    path = write_png(tmp_path / "rgb48.png", 2, 1, bit_depth=16, color_type=2, rows=[row])
    loaded = np.asarray(images.load_image(path)).astype(int)
    assert np.abs(loaded - [[[255, 0, 128], [0, 0, 255]]]).max() <= 1


def test_exif_orientation_is_applied(tmp_path):
    stored = Image.new("RGB", (40, 20), (0, 0, 255))
    stored.paste((255, 0, 0), (0, 0, 20, 20))  # left half red as stored
    exif = Image.Exif()
    exif[0x0112] = 6  # "rotate 90 degrees clockwise to display"
    path = tmp_path / "phone.jpg"
    stored.save(path, exif=exif.tobytes(), quality=100)
    shown = images.load_image(path)
    assert shown.size == (20, 40)
    top, bottom = np.asarray(shown)[5, 10].astype(int), np.asarray(shown)[35, 10].astype(int)
    assert top[0] > 200 and top[2] < 50 and bottom[2] > 200 and bottom[0] < 50


def test_corrupt_exif_loads_as_stored_without_warnings(tmp_path):
    path = tmp_path / "badexif.jpg"
    # An EXIF block cut off inside its orientation entry.
    Image.new("RGB", (8, 4)).save(path, exif=b"Exif\x00\x00MM\x00*\x00\x00\x00\x08\x00\x05\x01\x12\x00\x03")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert images.load_image(path).size == (8, 4)


@pytest.mark.parametrize("mode", ["1", "L", "P", "RGB", "RGBA", "CMYK", "YCbCr", "LAB", "HSV", "I", "F",
                                  "I;16", "I;16B", "LA", "PA", "RGBX", "RGBa", "La"])
def test_every_pillow_mode_converts(mode):
    image = Image.new(mode, (3, 2))
    assert images.convert(image, "RGB").mode == "RGB"
    assert images.convert(image, "L").mode == "L"


def test_premultiplied_alpha_keeps_its_colour():
    premultiplied = Image.new("RGBa", (1, 1), (100, 50, 25, 128))
    assert images.convert(premultiplied).getpixel((0, 0)) == (100, 50, 25)


# --- what fails, and how ----------------------------------------------------------------------

def test_decompression_bomb_20000_square(tmp_path):
    path = write_png(tmp_path / "bomb.png", 20000, 20000)
    assert path.stat().st_size < 100
    with pytest.raises(EdgekitError) as error:
        images.load_image(path)
    assert "400,000,000 pixels" in _one_line_naming(error, path)


def test_over_the_limit_but_under_twice_it_is_refused_too(tmp_path):
    # Pillow only warns between 1x and 2x its limit; edgekit refuses.
    path = write_png(tmp_path / "big.png", 10000, 10000)
    with pytest.raises(EdgekitError) as error:
        images.load_image(path)
    assert "too large" in _one_line_naming(error, path)


def test_zero_byte_file(tmp_path):
    path = tmp_path / "empty.jpg"
    path.write_bytes(b"")
    with pytest.raises(EdgekitError) as error:
        images.load_image(path)
    assert "empty (0 bytes)" in _one_line_naming(error, path)


@pytest.mark.parametrize("fmt", ["JPEG", "PNG", "BMP"])
def test_truncated_image(tmp_path, fmt):
    data = io.BytesIO()
    Image.fromarray(np.random.RandomState(0).randint(0, 255, (64, 64, 3), dtype=np.uint8)).save(data, fmt)
    path = tmp_path / f"cut.{fmt.lower()}"
    path.write_bytes(data.getvalue()[: len(data.getvalue()) // 2])
    with pytest.raises(EdgekitError) as error:
        images.load_image(path)
    assert "truncated or corrupt" in _one_line_naming(error, path)


def test_not_an_image_and_missing(tmp_path):
    path = tmp_path / "notes.jpg"
    path.write_text("these are not pixels\n")
    with pytest.raises(EdgekitError) as error:
        images.load_image(path)
    assert "JPEG, PNG or BMP" in _one_line_naming(error, path)
    with pytest.raises(EdgekitError) as error:
        images.load_image(tmp_path / "absent.png")
    assert "no such image file" in _one_line_naming(error, tmp_path / "absent.png")
    with pytest.raises(EdgekitError, match="is a directory"):
        images.load_image(tmp_path)


# --- resizing ---------------------------------------------------------------------------------

@pytest.mark.parametrize("in_hw,out_hw", [((7, 9), (4, 13)), ((341, 512), (128, 128)), ((5, 5), (11, 3))])
def test_tflite_bilinear_matches_litert_resize_bilinear(tmp_path, in_hw, out_hw):
    model = build_resize_model(tmp_path / "resize.tflite", in_hw, out_hw)
    interpreter = Interpreter(model_path=str(model), num_threads=1)
    interpreter.allocate_tensors()
    pixels = np.random.RandomState(1).randint(0, 256, (1, *in_hw, 3)).astype(np.float32)
    interpreter.set_tensor(interpreter.get_input_details()[0]["index"], pixels)
    interpreter.invoke()
    expected = interpreter.get_tensor(interpreter.get_output_details()[0]["index"])[0]
    ours = images.tflite_bilinear(pixels[0], (out_hw[1], out_hw[0]))
    assert ours.shape == expected.shape
    assert np.abs(ours - expected).max() < 1e-3
    # The PIL path rounds the same values to uint8; grayscale (2-D) takes the same route.
    image = Image.fromarray(pixels[0].astype(np.uint8))
    resized = np.asarray(images.resize(image, (out_hw[1], out_hw[0]), "tflite-bilinear")).astype(int)
    assert np.abs(resized - expected).max() <= 1
    gray = np.asarray(images.resize(image.convert("L"), (out_hw[1], out_hw[0]), "tflite-bilinear"))
    assert gray.shape == out_hw


def test_pillow_methods_by_name_and_unknown_name(coral):
    cat = images.load_image(coral("cat.bmp"))
    for name, method in [("nearest", Image.Resampling.NEAREST), ("bilinear", Image.Resampling.BILINEAR),
                         ("lanczos", Image.Resampling.LANCZOS)]:
        assert np.array_equal(np.asarray(images.resize(cat, (96, 64), name)),
                              np.asarray(cat.resize((96, 64), method)))
    # The methods really differ, so pinning one in a test means something.
    assert not np.array_equal(np.asarray(images.resize(cat, (96, 64), "tflite-bilinear")),
                              np.asarray(images.resize(cat, (96, 64), "bilinear")))
    with pytest.raises(ValueError, match="tflite-bilinear"):
        images.resize(cat, (10, 10), "bicubic")

"""Read any image people have into the 8-bit RGB (or L) pixels a model wants, and resize it by name.

Conversions, so results never depend on how a file happens to be stored:
- EXIF orientation is applied (a phone photo comes out the way it is shown).
- Transparency (RGBA, LA, palette or RGB with a transparent colour) is composited on black, the same
  value letterbox padding uses, rather than dropped: a dropped alpha exposes whatever colour the
  editor left under transparent pixels.
- 16-bit images (I;16*, and mode I as Pillow reads 16-bit PNGs) are scaled to 8 bits (x / 257),
  float images (F) clipped to 0..255, CMYK / YCbCr / palette / bilevel converted by Pillow.
Every failure a user can fix is an `EdgekitError` naming the file.
"""

import contextlib
import functools
import os
import re
import struct
import threading
import warnings

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from edgekit.errors import EdgekitError

# Pillow's own default; we enforce it ourselves so a change of Pillow's global cannot lift it.
MAX_PIXELS = 89_478_485
RESIZE_METHODS = ("tflite-bilinear", "nearest", "bilinear", "lanczos")
_PIL_METHODS = {"nearest": Image.Resampling.NEAREST, "bilinear": Image.Resampling.BILINEAR,
                "lanczos": Image.Resampling.LANCZOS}
_SIXTEEN_BIT = ("I;16", "I;16L", "I;16B", "I;16N", "I")


def _bomb_error(path, error):
    found = re.search(r"\((\d+) pixels\)", str(error))
    pixels = f"{int(found.group(1)):,} pixels" if found else "too many pixels"
    return EdgekitError(f"{path}: image too large ({pixels}, limit {MAX_PIXELS:,}; refused as a possible "
                        "decompression bomb): resize it to a smaller image first")


def _check_file(path):
    if not os.path.exists(path):
        raise EdgekitError(f"{path}: no such image file")
    if os.path.isdir(path):
        raise EdgekitError(f"{path}: is a directory, not an image file")
    if os.path.getsize(path) == 0:
        raise EdgekitError(f"{path}: the image file is empty (0 bytes): copy or export the image again")


@contextlib.contextmanager
def pillow_warnings():
    """The warning filters for decoding a user's pictures. Pillow warns about corrupt EXIF and such, yet the
    picture is still usable, so those stay quiet; its decompression-bomb warning becomes an error, so images
    between 1x and 2x the limit are refused too, not merely warned about. `warnings.catch_warnings` swaps the
    process's filter list and is not thread-safe: a caller decoding on several threads enters this once,
    around all of them."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        warnings.simplefilter("error", Image.DecompressionBombWarning)
        yield


def load_image(path, mode="RGB"):
    """Decode `path` (JPEG, PNG, BMP, anything Pillow reads) into a PIL image of `mode` ("RGB" or "L")."""
    if mode not in ("RGB", "L"):
        raise ValueError(f"mode must be 'RGB' or 'L', not {mode!r}")
    path = os.fspath(path)
    _check_file(path)
    try:
        with pillow_warnings():
            with Image.open(path) as image:
                width, height = image.size
                if width * height > MAX_PIXELS:
                    raise Image.DecompressionBombError(f"({width * height} pixels)")
                image.load()
                return convert(_upright(image), mode)
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as error:
        raise _bomb_error(path, error) from None
    except UnidentifiedImageError:
        raise EdgekitError(f"{path}: not an image file Pillow can read: give a JPEG, PNG or BMP "
                           "image") from None
    except PermissionError:
        raise EdgekitError(f"{path}: permission denied: make the image readable") from None
    except EdgekitError as error:  # from convert(), which does not know the file
        raise EdgekitError(f"{path}: {error}") from None
    except (OSError, SyntaxError, ValueError, EOFError) as error:
        # Pillow reports truncation and corrupt chunks through all of these, depending on the format.
        detail = str(error).splitlines()[0] if str(error) else type(error).__name__
        raise EdgekitError(f"{path}: the image is truncated or corrupt ({detail}): re-export or "
                           "download it again") from None


def _upright(image):
    """The image as displayed (EXIF orientation applied); as stored when its EXIF cannot be read."""
    try:
        return ImageOps.exif_transpose(image)
    except (OSError, SyntaxError, ValueError, KeyError, TypeError, struct.error):
        return image


def _to_8bit(image):
    """16-bit and float single-channel images -> L; anything else unchanged."""
    if image.mode in _SIXTEEN_BIT:
        pixels = np.asarray(image).astype(np.float64)
        pixels = np.clip(pixels, 0, 65535) / 257.0
    elif image.mode == "F":
        pixels = np.clip(np.asarray(image, dtype=np.float64), 0, 255)
    else:
        return image
    return Image.fromarray(np.round(pixels).astype(np.uint8), "L")


def _has_alpha(image):
    return image.mode in ("RGBA", "LA", "PA") or "transparency" in image.info


def _on_black(image):
    """Composite onto an opaque black background (RGBA result)."""
    rgba = image.convert("RGBA")
    background = Image.new("RGBA", rgba.size, (0, 0, 0, 255))
    return Image.alpha_composite(background, rgba)


def convert(image, mode="RGB"):
    """Any PIL image -> 8-bit `mode` ("RGB" or "L") by the rules in this module's docstring."""
    image = _to_8bit(image)
    if image.mode in ("RGBa", "La"):
        # Premultiplied alpha: the colour bands already are the image composited on black.
        bands = image.split()[:-1]
        image = Image.merge("RGB" if len(bands) == 3 else "L", bands)
    if _has_alpha(image):
        image = _on_black(image)
    if image.mode == mode:
        return image
    direct = image.mode in ("RGB", "L", "1", "P", "CMYK", "YCbCr")
    try:
        # Other modes (LAB, HSV, ...) go through RGB: Pillow has no direct route from some of them to L.
        return image.convert(mode) if direct else image.convert("RGB").convert(mode)
    except ValueError as error:
        raise EdgekitError(f"cannot convert a {image.mode} image to {mode}: {error}") from None


def tflite_bilinear(pixels, size):
    """TFLite RESIZE_BILINEAR with half_pixel_centers=True, align_corners=False, as float32.

    `pixels` is [H, W] or [H, W, C]; `size` is the output (width, height). Sample point of output
    index i: (i + 0.5) * in / out - 0.5; its low neighbour is clamped at 0 and its high neighbour at
    the last index, and the weights come from the distance to the clamped low one, as TFLite does.
    """
    return _bilinear_in_workspace(np.asarray(pixels), size).copy()


def _bilinear_in_workspace(pixels, size):
    """tflite_bilinear into this thread's scratch arrays; the result is valid until the next call.

    Why scratch arrays: a 640x480 -> 224x224 resize needs megabyte-sized temporaries, and glibc serves
    blocks that large with mmap and hands them back to the kernel on free (see mallopt(3),
    M_MMAP_THRESHOLD), so fresh ones page-fault on every image; reused ones do not
    (benchmarks/bench_run.py times the pipeline).
    """
    width, height = size
    in_height, in_width = pixels.shape[:2]
    channels = pixels.shape[2:]
    rows_y = _sample_points(height, in_height)
    columns_x = _sample_points(width, in_width)
    # Separable, same weights as the four-corner formula: blend along the axis that shrinks the
    # intermediate array most first.
    if height * in_width <= in_height * width:
        first = _blend(pixels, 0, rows_y, "first", (height, in_width) + channels)
        return _blend(first, 1, columns_x, "second", (height, width) + channels)
    first = _blend(pixels, 1, columns_x, "first", (in_height, width) + channels)
    return _blend(first, 0, rows_y, "second", (height, width) + channels)


_workspace = threading.local()


def _scratch(name, shape, dtype):
    arrays = _workspace.__dict__.setdefault("arrays", {})
    key = (name, shape, np.dtype(dtype))
    if key not in arrays:
        if len(arrays) > 16:  # many sizes in turn (e.g. letterboxing photos of every shape): start over
            arrays.clear()
        arrays[key] = np.empty(shape, dtype)
    return arrays[key]


def _blend(pixels, axis, points, name, shape):
    """low + (high - low) * weight along `axis`, gathered and computed in reused float32 arrays."""
    low, high, weight = points
    weight = weight.reshape((-1,) + (1,) * (pixels.ndim - 1 - axis))
    low_values = _scratch(name + "-low", shape, pixels.dtype)
    high_values = _scratch(name + "-high", shape, pixels.dtype)
    np.take(pixels, low, axis=axis, out=low_values)
    np.take(pixels, high, axis=axis, out=high_values)
    result = _scratch(name, shape, np.float32)
    np.subtract(high_values, low_values, out=result, dtype=np.float32)
    np.multiply(result, weight, out=result)
    np.add(result, low_values, out=result, dtype=np.float32)
    return result


@functools.lru_cache(maxsize=64)
def _sample_points(out_len, in_len):
    position = (np.arange(out_len, dtype=np.float32) + 0.5) * np.float32(in_len / out_len) - 0.5
    low = np.maximum(np.floor(position), 0).astype(np.intp)
    high = np.minimum(np.ceil(position), in_len - 1).astype(np.intp)
    return low, high, (position - low).astype(np.float32)


def resize(image, size, method="tflite-bilinear"):
    """`image` (PIL) resized to `size` (width, height) by a method of RESIZE_METHODS; a PIL image."""
    size = (int(size[0]), int(size[1]))
    if method == "tflite-bilinear":
        if image.size == size:
            return image.copy()
        values = _bilinear_in_workspace(np.asarray(image), size)
        # A blend of values in 0..255 stays in 0..255, so rounding needs no clip.
        np.rint(values, out=values)
        return Image.fromarray(values.astype(np.uint8), image.mode)
    if method not in _PIL_METHODS:
        raise ValueError(f"unknown resize method {method!r}: use one of {', '.join(RESIZE_METHODS)}")
    return image.resize(size, _PIL_METHODS[method])

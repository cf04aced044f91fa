"""Real labelled picture folders for training tests, composed in a temporary folder from data that ships inside
pip packages (nothing downloaded, nothing committed):

- `digits_folder`: scikit-learn's copy of the UCI handwritten digits (`sklearn.datasets.load_digits`: 1,797
  8x8 pictures with values 0..16, ten classes), upscaled to RGB pictures, one sub-folder per digit.
- `faces_folder`: scikit-image's LFW subset (`skimage.data.lfw_subset`: 200 grey 25x25 pictures, the first 100
  faces and the last 100 non-faces cut from the backgrounds of the same photos), as "face" / "not_face".
- `photo_folder`: random crops of scikit-image's bundled photos (chelsea the cat, coffee, the astronaut, the
  rocket...), one class per photo: varied, real pictures for quick tests.
- `write_csv` for `path,label[,split]` lists, and writers of the odd files users have: grayscale, RGBA and
  16-bit PNGs, a CMYK JPEG, a truncated JPEG, and a text file named like a JPEG.

Test files import it as a top-level module (`from picture_sets import digits_folder`): pytest's default
"prepend" import mode puts a test file's own folder on sys.path when that folder has no __init__.py.
Every function returns what it wrote (a folder or a file path, as a str) and is deterministic for its seed.
"""

import csv
import io
import os

import numpy as np
from PIL import Image

# scikit-image's photos that `photo_folder` cuts its classes from (all bundled with the package).
PHOTOS = ("chelsea", "coffee", "astronaut", "rocket")
# load_digits' pixel values run 0..16 (4x4 blocks of a 32x32 bitmap, counted).
_DIGIT_MAX = 16.0
# Nearest keeps the digits' blocky 8x8 look; bilinear smooths it. Both are Pillow's.
_UPSCALE = {"nearest": Image.Resampling.NEAREST, "bilinear": Image.Resampling.BILINEAR}


def _save(pixels, path, fmt):
    """uint8 [H, W] or [H, W, 3] pixels -> `path` as fmt ("png", "jpg", "jpeg", "bmp")."""
    os.makedirs(os.path.dirname(path), exist_ok=True)
    picture = Image.fromarray(pixels)
    if fmt in ("jpg", "jpeg"):
        picture.save(path, "JPEG", quality=95)
    else:
        picture.save(path)
    return str(path)


def _rgb(grey):
    """uint8 [H, W] -> [H, W, 3]: the same grey in all three channels."""
    return np.repeat(grey[:, :, None], 3, axis=2)


def digits_folder(root, per_class=None, classes=10, size=64, fmt="png", seed=0, upscale="nearest"):
    """Write load_digits' pictures under `root`/<digit>/<index>.<fmt> as `size` x `size` RGB; returns `root`.

    `classes`: the digits 0..classes-1 get a folder each. `per_class`: how many pictures of each (None: all of
    them, about 180), picked by a permutation seeded with `seed`. File names are the dataset's indices.
    """
    from sklearn.datasets import load_digits

    digits = load_digits()
    rng = np.random.default_rng(seed)
    for digit in range(classes):
        indices = np.flatnonzero(digits.target == digit)
        if per_class is not None:
            if per_class > len(indices):
                raise ValueError(f"digit {digit} has only {len(indices)} pictures, not {per_class}")
            indices = np.sort(rng.permutation(indices)[:per_class])
        for index in indices:
            grey = np.round(digits.images[index] * (255.0 / _DIGIT_MAX)).astype(np.uint8)
            big = np.asarray(Image.fromarray(grey).resize((size, size), _UPSCALE[upscale]))
            _save(_rgb(big), os.path.join(root, str(digit), f"{index:04d}.{fmt}"), fmt)
    return str(root)


def faces_folder(root, size=64, fmt="png"):
    """Write the LFW subset under `root`/face and `root`/not_face as `size` px RGB pictures; returns `root`.

    skimage's docstring says the array is uint8, but it loads as float64 in 0..1 (scikit-image 0.26), so both
    are handled. Its order: the first 100 are faces, the other 100 non-faces (skimage.data.lfw_subset's docs).
    """
    from skimage import data

    pictures = data.lfw_subset()
    if pictures.dtype != np.uint8:
        pictures = np.round(np.clip(pictures, 0.0, 1.0) * 255.0).astype(np.uint8)
    for index, grey in enumerate(pictures):
        label = "face" if index < 100 else "not_face"
        big = np.asarray(Image.fromarray(grey).resize((size, size), Image.Resampling.BILINEAR))
        _save(_rgb(big), os.path.join(root, label, f"{index:03d}.{fmt}"), fmt)
    return str(root)


def photo(name):
    """A scikit-image photo by name ("chelsea", "coffee", ...) as uint8 RGB [H, W, 3]."""
    from skimage import data

    pixels = np.asarray(getattr(data, name)())
    return _rgb(pixels) if pixels.ndim == 2 else pixels[:, :, :3]


def random_crops(pixels, count, size, seed=0, smallest=0.3):
    """`count` square crops of `pixels` (sides from `smallest` to all of the shorter side, seeded), each resized
    to `size` x `size`: uint8 [count, size, size, 3]."""
    rng = np.random.default_rng(seed)
    height, width = pixels.shape[:2]
    shorter = min(height, width)
    crops = []
    for _ in range(count):
        side = int(rng.integers(max(1, int(shorter * smallest)), shorter + 1))
        top, left = int(rng.integers(0, height - side + 1)), int(rng.integers(0, width - side + 1))
        cut = Image.fromarray(pixels[top:top + side, left:left + side])
        crops.append(np.asarray(cut.resize((size, size), Image.Resampling.BILINEAR)))
    return np.stack(crops)


def photo_folder(root, classes=PHOTOS, per_class=6, size=48, fmt="jpg", seed=0):
    """Write `per_class` random crops of each named scikit-image photo under `root`/<name>/<k>.<fmt>; returns
    `root`. The classes are easy to tell apart, so a few pictures each are enough for quick tests."""
    for number, name in enumerate(classes):
        for k, crop in enumerate(random_crops(photo(name), per_class, size, seed=seed * 1000 + number)):
            _save(crop, os.path.join(root, name, f"{k:03d}.{fmt}"), fmt)
    return str(root)


def write_csv(path, rows, header=None):
    """Write `rows` (tuples such as (path, label) or (path, label, split)) to the CSV file `path`, after the
    `header` row when one is given (e.g. ("path", "label", "split")); returns `path`."""
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    with open(path, "w", newline="", encoding="utf-8") as f:
        writer = csv.writer(f)
        if header:
            writer.writerow(header)
        writer.writerows(rows)
    return str(path)


def _sample(size, seed):
    """A real RGB picture to make odd files of: a crop of chelsea the cat, `size` px square."""
    return random_crops(photo("chelsea"), 1, size, seed=seed)[0]


def write_grayscale(path, size=32, seed=0):
    """An 8-bit grayscale (mode L) PNG or JPEG of the cat; returns `path`."""
    grey = np.asarray(Image.fromarray(_sample(size, seed)).convert("L"))
    return _save(grey, path, os.path.splitext(path)[1].lstrip(".").lower() or "png")


def write_rgba(path, size=32, seed=0):
    """An RGBA PNG of the cat whose left half is fully transparent; returns `path`."""
    alpha = np.full((size, size, 1), 255, np.uint8)
    alpha[:, : size // 2] = 0
    os.makedirs(os.path.dirname(path), exist_ok=True)
    Image.fromarray(np.concatenate([_sample(size, seed), alpha], axis=2), "RGBA").save(path)
    return str(path)


def write_16bit_png(path, size=32, seed=0):
    """A 16-bit grayscale PNG (Pillow reads it as mode I;16 or I): the cat's grey times 257, so it scales back to
    the same 8-bit grey; returns `path`."""
    grey = np.asarray(Image.fromarray(_sample(size, seed)).convert("L")).astype(np.uint16) * 257
    os.makedirs(os.path.dirname(path), exist_ok=True)
    Image.fromarray(grey).save(path)
    return str(path)


def write_cmyk_jpeg(path, size=32, seed=0):
    """A CMYK JPEG of the cat (as print workflows export them); returns `path`."""
    os.makedirs(os.path.dirname(path), exist_ok=True)
    Image.fromarray(_sample(size, seed)).convert("CMYK").save(path, "JPEG", quality=95)
    return str(path)


def jpeg_bytes(size=64, seed=0):
    """The bytes of a JPEG of the cat."""
    buffer = io.BytesIO()
    Image.fromarray(_sample(size, seed)).save(buffer, "JPEG", quality=95)
    return buffer.getvalue()


def write_truncated_jpeg(path, size=64, seed=0, keep=0.6):
    """A JPEG cut off after `keep` of its bytes (an interrupted copy or download); returns `path`."""
    whole = jpeg_bytes(size, seed)
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "wb") as f:
        f.write(whole[: int(len(whole) * keep)])
    return str(path)


def write_not_an_image(path):
    """A text file with a .jpg name (a saved web page, a note); returns `path`."""
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "w", encoding="utf-8") as f:
        f.write("<html><body>this is not a picture</body></html>\n")
    return str(path)


def odd_pictures(folder, size=32):
    """One of each odd readable picture (grayscale, RGBA, 16-bit PNG, CMYK JPEG) in `folder`: {kind: path}."""
    return {"grayscale": write_grayscale(os.path.join(folder, "grey.png"), size),
            "rgba": write_rgba(os.path.join(folder, "rgba.png"), size),
            "16-bit": write_16bit_png(os.path.join(folder, "deep.png"), size),
            "cmyk": write_cmyk_jpeg(os.path.join(folder, "cmyk.jpg"), size)}

"""Real-pixel detection sets with exact boxes, for detector training tests and benchmarks (nothing downloaded,
nothing committed): objects cut from real pictures, pasted at seeded places and scales onto crops of other real
photos, then written as COCO, Pascal VOC, YOLO or TFLite Model Maker's CSV, or as a video for `edgekit camera`.

- "face": the 100 faces of scikit-image's LFW subset (`skimage.data.lfw_subset`: 200 grey 25x25 pictures, the
  first 100 faces, the other 100 non-faces cut from the same photos' backgrounds, as its docstring says), pasted
  as rectangles: the box is the pasted rectangle.
- "coin": the 24 coins of `skimage.data.coins()` (Greek coins from Pompeii, bundled with scikit-image), cut out
  with their own masks and pasted through them, turned by a random angle: the box is the mask's extent.
- Backgrounds: scikit-image's and scikit-learn's bundled photos, each split with photos of its own (see
  BACKGROUNDS), cropped and resized to picture sizes that are mostly not square, so letterboxing is exercised.

Train, val and test never share an object instance or a background photo: the split name fixes which ones it
draws from, whatever the seed, so a test score measures generalisation. Objects may touch but never hide each
other: two boxes share at most MOST_SHARED of the smaller one. A few pictures are empty (no boxes) and some are
crowded (CROWDED_FEWEST objects or more).

Everything is seeded (same seed, same bytes) and the object and photo pools are made once per process, so a
thousand pictures take seconds. No pytest import: `benchmarks/` scripts import this module too (put
tests/training on sys.path, as bench_train.py does for picture_sets). Test files import it as a top-level
module (`from box_sets import composite_set`).
"""

import csv
import functools
import io
import json
import math
import os
import xml.etree.ElementTree as ElementTree
from collections import namedtuple

import numpy as np
from PIL import Image

from edgekit.errors import EdgekitError
from edgekit.files import atomic_path, write_atomic

Composite = namedtuple("Composite", "pixels boxes labels")
"""One picture: uint8 [H, W, 3]; boxes [(xmin, ymin, xmax, ymax)] in pixels (ints; xmax, ymax are the edges
past the last object pixel, so the width is xmax - xmin); labels [class name], one per box."""
Placement = namedtuple("Placement", "kind source resized angle flip box")
"""How one object was pasted: kind ("face", "coin", or DISTRACTOR, pasted without a box), source (its index in
its source: the LFW picture or the coin's number), resized ((width, height) it was resized to before its empty
edges were trimmed), angle (degrees turned, coins only), flip (mirrored left-right), box (as in Composite)."""
Composed = namedtuple("Composed", "composite background placements")
"""A Composite with how it was made: the background photo's name and the Placements in pasting order."""
ObjectCut = namedtuple("ObjectCut", "grey mask")
"""An object ready to paste: uint8 [h, w] grey pixels and bool [h, w] mask; the mask reaches all four edges."""

CLASS_NAMES = ("face", "coin")
# Non-faces of the LFW subset, pasted as unlabelled look-alikes when `distractor_share` asks for them.
DISTRACTOR = "not_face"
KINDS = CLASS_NAMES + (DISTRACTOR,)
SPLITS = ("train", "val", "test")
# Model Maker's CSV names the splits in its first column (its object detector DataLoader.from_csv).
CSV_SPLITS = {"train": "TRAIN", "val": "VALIDATION", "test": "TEST"}

# Background photos per split, disjoint; grey and colour, textured and flat in each. Left out on purpose:
# astronaut and camera (each shows a real face that no box would mark), coins (the coin class's own source),
# cat (the same photo as chelsea), and the drawn pictures (logo, colorwheel, checkerboard, horse's silhouette).
BACKGROUNDS = {
    "train": ("brick", "grass", "page", "moon", "cell", "chelsea", "rocket", "hubble_deep_field",
              "immunohistochemistry", "retina", "motorcycle"),
    "val": ("clock", "flower"),
    "test": ("gravel", "text", "coffee", "china"),
}
# Share of each object source's instances per split, drawn by a permutation seeded with INSTANCE_SEED (a
# constant: the split name alone fixes them). Train gets the rest.
SPLIT_SHARES = {"val": 0.15, "test": 0.25}
INSTANCE_SEED = 13
# Picture sizes as (width, height): landscape, portrait and square, as cameras and phones give them.
SIZES = ((320, 240), (400, 300), (300, 400), (320, 320))
# Object sides (the longer side of the box): from SMALLEST px to LARGEST of the picture's shorter side; crowded
# pictures keep to CROWDED_LARGEST so that CROWDED_FEWEST..CROWDED_MOST objects fit without hiding each other.
SMALLEST = 16
LARGEST = 0.45
CROWDED_LARGEST = 0.2
CROWDED_FEWEST, CROWDED_MOST = 8, 12
# Objects in a picture that is neither empty nor crowded.
FEWEST, MOST = 1, 5
# Two boxes may overlap by at most this share of the smaller box's area (so their IoU stays below it too).
MOST_SHARED = 0.15
# Tries at finding a free place for an object before its size shrinks by SHRINK (and then it is left out).
PLACE_TRIES = 40
SHRINK = 0.8
# Faces are stretched to an aspect (width / height) between 1 / ASPECT and ASPECT.
ASPECT = 1.25
# Background crops span this share of the largest crop of the picture's aspect (up to all of it).
CROP_SMALLEST = 0.35
# Photos are shrunk once, so that their longer side is at most this: crops are resized to a few hundred pixels.
PHOTO_SIDE = 800
JPEG_QUALITY = 90
# OpenCV's four-character codes by file suffix: Motion JPEG in AVI and MPEG-4 part 2 in MP4, both written by
# the FFmpeg backend of the opencv-python wheels.
VIDEO_CODECS = {".avi": "MJPG", ".mp4": "mp4v"}
FORMATS = ("coco", "voc", "yolo", "csv")


# --- pools: made once per process --------------------------------------------------------------------------

def _grey_uint8(pixels):
    """skimage's LFW subset loads as float64 in 0..1 in 0.26 although its docstring says uint8; take either."""
    pixels = np.asarray(pixels)
    if pixels.dtype == np.uint8:
        return pixels
    return np.round(np.clip(pixels, 0.0, 1.0) * 255.0).astype(np.uint8)


@functools.lru_cache(maxsize=None)
def _lfw():
    from skimage import data

    return _grey_uint8(data.lfw_subset())


@functools.lru_cache(maxsize=None)
def coin_cuts():
    """The coins of skimage.data.coins() as ObjectCuts, in scikit-image's label order (row by row).

    The segmentation is the one scikit-image's gallery teaches on this very photo ("Comparing edge-based and
    region-based segmentation"): a watershed of the Sobel gradient from markers at the darkest (background)
    and brightest (coin) grey levels, with holes filled; here also opened a little so that no coin keeps a
    thread of background, and specks dropped.
    """
    from scipy import ndimage
    from skimage import data, filters, measure, morphology, segmentation

    grey = data.coins()
    markers = np.zeros(grey.shape, np.uint8)
    markers[grey < 30] = 1
    markers[grey > 150] = 2
    coins = ndimage.binary_fill_holes(segmentation.watershed(filters.sobel(grey), markers) == 2)
    coins = ndimage.binary_opening(coins, morphology.disk(2).astype(bool))
    cuts = []
    for region in measure.regionprops(measure.label(coins)):
        if region.area < 400:  # specks of the watershed, far smaller than any coin
            continue
        top, left, bottom, right = region.bbox
        cuts.append(ObjectCut(grey[top:bottom, left:right].copy(), region.image.copy()))
    return tuple(cuts)


def _source_count(kind):
    if kind == "coin":
        return len(coin_cuts())
    return len(_lfw()) // 2  # faces first, non-faces after (lfw_subset's docstring)


@functools.lru_cache(maxsize=None)
def split_sources(kind, split):
    """The indices of `kind`'s instances ("face", "coin" or DISTRACTOR) that `split` draws from (sorted).

    A permutation seeded with a constant deals them out, so each split's instances depend only on its name.
    """
    _check_split(split)
    count = _source_count(kind)
    dealt = np.random.default_rng([INSTANCE_SEED, KINDS.index(kind)]).permutation(count)
    val = max(1, round(count * SPLIT_SHARES["val"]))
    test = max(1, round(count * SPLIT_SHARES["test"]))
    parts = {"val": dealt[:val], "test": dealt[val:val + test], "train": dealt[val + test:]}
    return tuple(sorted(int(i) for i in parts[split]))


@functools.lru_cache(maxsize=None)
def background_photo(name):
    """A background photo by name as uint8 RGB [H, W, 3], its longer side shrunk to at most PHOTO_SIDE."""
    if name in ("china", "flower"):
        from sklearn.datasets import load_sample_image

        pixels = load_sample_image(f"{name}.jpg")
    else:
        from skimage import data

        pixels = data.stereo_motorcycle()[0] if name == "motorcycle" else getattr(data, name)()
    pixels = np.asarray(pixels)
    pixels = np.repeat(pixels[:, :, None], 3, axis=2) if pixels.ndim == 2 else pixels[:, :, :3]
    longer = max(pixels.shape[:2])
    if longer > PHOTO_SIDE:
        scale = PHOTO_SIDE / longer
        size = (round(pixels.shape[1] * scale), round(pixels.shape[0] * scale))
        pixels = np.asarray(Image.fromarray(pixels).resize(size, Image.Resampling.BILINEAR))
    return np.ascontiguousarray(pixels, dtype=np.uint8)


@functools.lru_cache(maxsize=None)
def _photo_image(name):
    return Image.fromarray(background_photo(name))


# --- one object, one picture -------------------------------------------------------------------------------

def _trimmed(cut):
    """The cut without mask-free rows and columns at its edges."""
    rows, columns = np.flatnonzero(cut.mask.any(axis=1)), np.flatnonzero(cut.mask.any(axis=0))
    return ObjectCut(cut.grey[rows[0]:rows[-1] + 1, columns[0]:columns[-1] + 1],
                     cut.mask[rows[0]:rows[-1] + 1, columns[0]:columns[-1] + 1])


def _turned_coin(source, angle):
    """Coin `source` turned by `angle` degrees (Pillow's rotate, expanded so nothing is cut), trimmed."""
    cut = coin_cuts()[source]
    if angle == 0:
        return cut
    grey = Image.fromarray(cut.grey).rotate(angle, Image.Resampling.BILINEAR, expand=True)
    mask = Image.fromarray(cut.mask.astype(np.uint8) * 255).rotate(angle, Image.Resampling.BILINEAR, expand=True)
    return _trimmed(ObjectCut(np.asarray(grey), np.asarray(mask) >= 128))


def object_cut(kind, source, resized, angle=0.0, flip=False):
    """The ObjectCut pasted for a Placement: instance `source` of `kind`, turned by `angle` (coins), resized to
    `resized` (width, height), mirrored when `flip`, and trimmed to its mask, so its shape is the box's."""
    if kind == "coin":
        cut = _turned_coin(source, angle)
    else:
        grey = _lfw()[source if kind == "face" else _source_count("face") + source]
        cut = ObjectCut(grey, np.ones(grey.shape, bool))
    grey = np.asarray(Image.fromarray(cut.grey).resize(resized, Image.Resampling.BILINEAR))
    mask = np.asarray(Image.fromarray(cut.mask.astype(np.uint8) * 255).resize(resized, Image.Resampling.BILINEAR))
    cut = _trimmed(ObjectCut(grey, mask >= 128))
    if flip:
        cut = ObjectCut(cut.grey[:, ::-1], cut.mask[:, ::-1])
    return ObjectCut(np.ascontiguousarray(cut.grey), np.ascontiguousarray(cut.mask))


def _background(rng, names, width, height):
    """A random crop of one of the photos `names`, of the picture's aspect, resized to width x height and
    mirrored half the time: (name, uint8 [height, width, 3])."""
    name = names[int(rng.integers(len(names)))]
    photo = _photo_image(name)
    photo_width, photo_height = photo.size
    fit = min(photo_width / width, photo_height / height)  # the largest crop of the picture's aspect
    share = rng.uniform(CROP_SMALLEST, 1.0)
    crop_width = max(1, min(photo_width, round(width * fit * share)))
    crop_height = max(1, min(photo_height, round(height * fit * share)))
    left = int(rng.integers(photo_width - crop_width + 1))
    top = int(rng.integers(photo_height - crop_height + 1))
    # Pillow resamples the crop box straight from the photo; reducing_gap shrinks big crops in two steps
    # (Image.reduce, then the filter), faster and as smooth (Pillow's Image.resize docs).
    pixels = np.asarray(photo.resize((width, height), Image.Resampling.BILINEAR,
                                     box=(left, top, left + crop_width, top + crop_height), reducing_gap=3.0))
    if rng.random() < 0.5:
        pixels = pixels[:, ::-1]
    return name, np.array(pixels, np.uint8)


def overlap_share(box, other):
    """Area both boxes cover, as a share of the smaller box's area."""
    width = min(box[2], other[2]) - max(box[0], other[0])
    height = min(box[3], other[3]) - max(box[1], other[1])
    if width <= 0 or height <= 0:
        return 0.0
    smaller = min((box[2] - box[0]) * (box[3] - box[1]), (other[2] - other[0]) * (other[3] - other[1]))
    return width * height / smaller


def _free_place(rng, shape, size, taken):
    """A box of `shape` (h, w) inside a picture of `size` (width, height) that shares at most MOST_SHARED with
    every box in `taken`, or None after PLACE_TRIES tries."""
    height, width = shape
    for _ in range(PLACE_TRIES):
        left = int(rng.integers(size[0] - width + 1))
        top = int(rng.integers(size[1] - height + 1))
        box = (left, top, left + width, top + height)
        if all(overlap_share(box, other) <= MOST_SHARED for other in taken):
            return box
    return None


def _resized(rng, kind, source, side):
    """(width, height, angle): the size to resize instance `source` of `kind` to, its longer side `side`."""
    if kind == "coin":
        angle = float(rng.uniform(0.0, 360.0))
        turned = _turned_coin(source, angle).mask.shape
        scale = side / max(turned)
        return max(1, round(turned[1] * scale)), max(1, round(turned[0] * scale)), angle
    aspect = math.exp(rng.uniform(-math.log(ASPECT), math.log(ASPECT)))
    if aspect >= 1:
        return side, max(1, round(side / aspect)), 0.0
    return max(1, round(side * aspect)), side, 0.0


def _place(rng, pixels, kind, sources, side, taken):
    """Paste one object of `kind` with longer side about `side` onto `pixels` where it hides nothing in
    `taken`; returns its Placement, or None when no free place was found even at SMALLEST."""
    source = sources[int(rng.integers(len(sources)))]
    flip = bool(rng.random() < 0.5)
    while True:
        width, height, angle = _resized(rng, kind, source, side)
        cut = object_cut(kind, source, (width, height), angle, flip)
        box = _free_place(rng, cut.mask.shape, (pixels.shape[1], pixels.shape[0]), taken)
        if box is not None:
            region = pixels[box[1]:box[3], box[0]:box[2]]
            region[cut.mask] = cut.grey[cut.mask][:, None]
            return Placement(kind, source, (width, height), angle, flip, box)
        if side <= SMALLEST:
            return None
        side = max(SMALLEST, int(side * SHRINK))


def _compose(rng, split, size, objects, largest, distractors):
    """One Composed picture of `size` (width, height) with `objects` boxed objects and `distractors` unboxed
    non-faces, object sides log-uniform from SMALLEST to `largest` of the shorter side."""
    name, pixels = _background(rng, BACKGROUNDS[split], *size)
    top_side = max(SMALLEST, int(largest * min(size)))
    kinds = [CLASS_NAMES[int(rng.integers(len(CLASS_NAMES)))] for _ in range(objects)] + [DISTRACTOR] * distractors
    placements = []
    for kind in (kinds[i] for i in rng.permutation(len(kinds))):
        side = int(round(math.exp(rng.uniform(math.log(SMALLEST), math.log(top_side)))))
        placed = _place(rng, pixels, kind, split_sources(kind, split), side, [p.box for p in placements])
        if placed is not None:
            placements.append(placed)
    boxed = [p for p in placements if p.kind != DISTRACTOR]
    composite = Composite(pixels, [p.box for p in boxed], [p.kind for p in boxed])
    return Composed(composite, name, placements)


def _check_split(split):
    if split not in SPLITS:
        raise EdgekitError(f"box_sets: unknown split {split!r}; use one of {', '.join(SPLITS)}")


def _sizes(sizes):
    """None -> SIZES; one (width, height) -> just it; else the list as given."""
    if sizes is None:
        return SIZES
    sizes = tuple(sizes)
    if len(sizes) == 2 and all(isinstance(v, (int, np.integer)) for v in sizes):
        sizes = (sizes,)
    for width, height in sizes:
        if min(width, height) < 2 * SMALLEST:
            raise EdgekitError(f"box_sets: picture size {width}x{height} is too small for {SMALLEST} px objects; "
                               f"give sides of at least {2 * SMALLEST}")
    return tuple((int(w), int(h)) for w, h in sizes)


def composed_pictures(count, split="train", seed=0, sizes=None, empty_share=0.05, crowded_share=0.1,
                      distractor_share=0.0):
    """`count` Composed pictures of `split` for `seed`: the pictures with how each was made (for tests).

    Exactly round(count * empty_share) pictures are empty and round(count * crowded_share) crowded, at seeded
    positions; a crowded picture holds CROWDED_FEWEST..CROWDED_MOST objects where it has room for them (sides
    from about 96 px; smaller pictures get what fits). `distractor_share` of the pictures also get one or two
    LFW non-faces, unboxed. Picture i depends only on (seed, split, i) and whether it is empty or crowded.
    """
    _check_split(split)
    sizes = _sizes(sizes)
    empty, crowded = round(count * empty_share), round(count * crowded_share)
    if count < 0 or empty + crowded > count:
        raise EdgekitError(f"box_sets: {count} pictures cannot hold {empty} empty and {crowded} crowded ones; "
                           "lower empty_share or crowded_share")
    split_number = SPLITS.index(split)
    order = np.random.default_rng([seed, split_number]).permutation(count)
    kinds = np.zeros(count, np.int8)
    kinds[order[:empty]] = 1
    kinds[order[empty:empty + crowded]] = 2
    pictures = []
    for index in range(count):
        rng = np.random.default_rng([seed, split_number, index])
        size = sizes[int(rng.integers(len(sizes)))]
        distractors = int(rng.integers(1, 3)) if rng.random() < distractor_share else 0
        if kinds[index] == 1:
            objects, largest = 0, LARGEST
        elif kinds[index] == 2:
            objects, largest = int(rng.integers(CROWDED_FEWEST, CROWDED_MOST + 1)), CROWDED_LARGEST
        else:
            objects, largest = int(rng.integers(FEWEST, MOST + 1)), LARGEST
        pictures.append(_compose(rng, split, size, objects, largest, distractors))
    return pictures


def composite_pictures(count, split="train", seed=0, sizes=None, empty_share=0.05, crowded_share=0.1,
                       distractor_share=0.0):
    """`count` Composites of `split` ("train", "val" or "test"), the same for the same arguments.

    `sizes`: (width, height) of the pictures, one pair or a list to draw from (default SIZES). See
    `composed_pictures` for the shares.
    """
    return [c.composite for c in composed_pictures(count, split, seed, sizes, empty_share, crowded_share,
                                                   distractor_share)]


# --- writers -----------------------------------------------------------------------------------------------

def _normalized(value, side):
    """`value` / `side` as text, with digits enough that multiplying back gives the pixel within 1e-6."""
    return format(value / side, ".10g")


def _picture_name(split, index):
    return f"{split}_{index:05d}"


def _write_jpeg(path, pixels):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, "JPEG", quality=JPEG_QUALITY)
    return write_atomic(path, buffer.getvalue())


def _checked_splits(splits):
    for split in splits:
        _check_split(split)
    return splits


def write_coco(folder, splits):
    """COCO: images/<split>/<split>_NNNNN.jpg and annotations/instances_<split>.json for each split of `splits`
    ({split: [Composite]}); category ids 1..C in CLASS_NAMES order, bbox [x, y, w, h], area w * h, iscrowd 0.
    Returns `folder`."""
    categories = [{"id": number, "name": name, "supercategory": "object"}
                  for number, name in enumerate(CLASS_NAMES, 1)]
    for split, pictures in _checked_splits(splits).items():
        images, annotations = [], []
        for index, picture in enumerate(pictures):
            file_name = _picture_name(split, index) + ".jpg"
            _write_jpeg(os.path.join(folder, "images", split, file_name), picture.pixels)
            height, width = picture.pixels.shape[:2]
            images.append({"id": index + 1, "file_name": file_name, "width": width, "height": height})
            for (x0, y0, x1, y1), label in zip(picture.boxes, picture.labels):
                annotations.append({"id": len(annotations) + 1, "image_id": index + 1,
                                    "category_id": CLASS_NAMES.index(label) + 1,
                                    "bbox": [x0, y0, x1 - x0, y1 - y0], "area": (x1 - x0) * (y1 - y0),
                                    "iscrowd": 0})
        document = {"info": {"description": f"box_sets composite pictures, split {split}"},
                    "images": images, "annotations": annotations, "categories": categories}
        os.makedirs(os.path.join(folder, "annotations"), exist_ok=True)
        write_atomic(os.path.join(folder, "annotations", f"instances_{split}.json"), json.dumps(document))
    return str(folder)


def _voc_xml(file_name, picture):
    """Pascal VOC annotation text; corners are written as the pixel edges Composite uses (0-based, xmax past
    the last pixel), which is how edgekit's VOC reader reads them back."""
    height, width = picture.pixels.shape[:2]
    root = ElementTree.Element("annotation")
    ElementTree.SubElement(root, "folder").text = "JPEGImages"
    ElementTree.SubElement(root, "filename").text = file_name
    size = ElementTree.SubElement(root, "size")
    for key, value in (("width", width), ("height", height), ("depth", 3)):
        ElementTree.SubElement(size, key).text = str(value)
    ElementTree.SubElement(root, "segmented").text = "0"
    for box, label in zip(picture.boxes, picture.labels):
        item = ElementTree.SubElement(root, "object")
        for key, value in (("name", label), ("pose", "Unspecified"), ("truncated", "0"), ("difficult", "0")):
            ElementTree.SubElement(item, key).text = value
        corners = ElementTree.SubElement(item, "bndbox")
        for key, value in zip(("xmin", "ymin", "xmax", "ymax"), box):
            ElementTree.SubElement(corners, key).text = str(value)
    ElementTree.indent(root)
    return ElementTree.tostring(root, encoding="unicode") + "\n"


def write_voc(folder, splits):
    """Pascal VOC: JPEGImages/<split>_NNNNN.jpg, Annotations/<split>_NNNNN.xml and ImageSets/Main/<split>.txt
    (the stems, one a line) for each split of `splits` ({split: [Composite]}). Returns `folder`."""
    for split, pictures in _checked_splits(splits).items():
        stems = []
        for index, picture in enumerate(pictures):
            stem = _picture_name(split, index)
            _write_jpeg(os.path.join(folder, "JPEGImages", stem + ".jpg"), picture.pixels)
            os.makedirs(os.path.join(folder, "Annotations"), exist_ok=True)
            write_atomic(os.path.join(folder, "Annotations", stem + ".xml"), _voc_xml(stem + ".jpg", picture))
            stems.append(stem)
        os.makedirs(os.path.join(folder, "ImageSets", "Main"), exist_ok=True)
        write_atomic(os.path.join(folder, "ImageSets", "Main", f"{split}.txt"), "".join(s + "\n" for s in stems))
    return str(folder)


def write_yolo(folder, splits):
    """YOLO: images/<split>/<split>_NNNNN.jpg, labels/<split>/<split>_NNNNN.txt (`class x_centre y_centre width
    height`, normalized; an empty file for an empty picture) and data.yaml naming the splits' folders and the
    classes, as Ultralytics reads it. Returns `folder`."""
    for split, pictures in _checked_splits(splits).items():
        for index, picture in enumerate(pictures):
            stem = _picture_name(split, index)
            _write_jpeg(os.path.join(folder, "images", split, stem + ".jpg"), picture.pixels)
            height, width = picture.pixels.shape[:2]
            lines = [" ".join([str(CLASS_NAMES.index(label)), _normalized((x0 + x1) / 2, width),
                               _normalized((y0 + y1) / 2, height), _normalized(x1 - x0, width),
                               _normalized(y1 - y0, height)]) + "\n"
                     for (x0, y0, x1, y1), label in zip(picture.boxes, picture.labels)]
            os.makedirs(os.path.join(folder, "labels", split), exist_ok=True)
            write_atomic(os.path.join(folder, "labels", split, stem + ".txt"), "".join(lines))
    yaml = ["path: .\n"] + [f"{split}: images/{split}\n" for split in splits]
    yaml += [f"nc: {len(CLASS_NAMES)}\n", "names:\n"] + [f"  {i}: {name}\n" for i, name in enumerate(CLASS_NAMES)]
    write_atomic(os.path.join(folder, "data.yaml"), "".join(yaml))
    return str(folder)


def write_csv(folder, splits, name="boxes.csv"):
    """TFLite Model Maker's object-detector CSV `folder`/`name`, the pictures in `folder`/images/ named
    relative to it: one row `SPLIT,path,label,xmin,ymin,,,xmax,ymax,,` per box with corners normalized to
    0..1, and `SPLIT,path,,,,,,,,,` for a picture without boxes. Returns the CSV's path."""
    rows = []
    for split, pictures in _checked_splits(splits).items():
        for index, picture in enumerate(pictures):
            relative = f"images/{_picture_name(split, index)}.jpg"
            _write_jpeg(os.path.join(folder, relative), picture.pixels)
            height, width = picture.pixels.shape[:2]
            for (x0, y0, x1, y1), label in zip(picture.boxes, picture.labels):
                corners = [_normalized(x0, width), _normalized(y0, height), _normalized(x1, width),
                           _normalized(y1, height)]
                rows.append([CSV_SPLITS[split], relative, label, *corners[:2], "", "", *corners[2:], "", ""])
            if not picture.boxes:
                rows.append([CSV_SPLITS[split], relative] + [""] * 9)
    text = io.StringIO()
    csv.writer(text, lineterminator="\n").writerows(rows)
    return write_atomic(os.path.join(folder, name), text.getvalue())


WRITERS = {"coco": write_coco, "voc": write_voc, "yolo": write_yolo, "csv": write_csv}


def composite_set(folder, format="coco", train=60, val=0, test=20, seed=0, **options):
    """Write a composite detection set of `train`, `val` and `test` pictures (a split of 0 is left out) in
    `format` ("coco", "voc", "yolo" or "csv") under `folder`; `options` go to composite_pictures (sizes,
    shares). Returns the folder, or the CSV's path for "csv"."""
    if format not in WRITERS:
        raise EdgekitError(f"box_sets: unknown format {format!r}; use one of {', '.join(FORMATS)}")
    counts = {"train": train, "val": val, "test": test}
    splits = {split: composite_pictures(count, split, seed, **options) for split, count in counts.items() if count}
    return WRITERS[format](folder, splits)


def _frame(pixels, size):
    """`pixels` fitted inside `size` (width, height) without changing its aspect, centred on black."""
    height, width = pixels.shape[:2]
    scale = min(size[0] / width, size[1] / height)
    fitted = (max(1, round(width * scale)), max(1, round(height * scale)))
    frame = np.zeros((size[1], size[0], 3), np.uint8)
    left, top = (size[0] - fitted[0]) // 2, (size[1] - fitted[1]) // 2
    frame[top:top + fitted[1], left:left + fitted[0]] = np.asarray(
        Image.fromarray(pixels).resize(fitted, Image.Resampling.BILINEAR))
    return frame


def write_video(path, pictures, fps=5, size=(320, 240)):
    """A video of `pictures` (Composites or uint8 RGB arrays), one frame each, every picture fitted inside
    `size` (width, height) on black, for `edgekit camera`. `path` ends in .avi (Motion JPEG) or .mp4 (MPEG-4).
    Returns `path`."""
    import cv2

    suffix = os.path.splitext(os.fspath(path))[1].lower()
    if suffix not in VIDEO_CODECS:
        raise EdgekitError(f"{path}: cannot write a {suffix or 'suffix-less'} video; name it .avi or .mp4")
    if not pictures:
        raise EdgekitError(f"{path}: no pictures to write; give at least one")
    with atomic_path(path) as temporary:
        writer = cv2.VideoWriter(temporary, cv2.VideoWriter_fourcc(*VIDEO_CODECS[suffix]), float(fps),
                                 tuple(size))
        if not writer.isOpened():
            raise EdgekitError(f"{path}: OpenCV cannot write {VIDEO_CODECS[suffix]} video here; try the other "
                               f"of {', '.join(VIDEO_CODECS)}")
        try:
            for picture in pictures:
                pixels = picture.pixels if isinstance(picture, Composite) else np.asarray(picture, np.uint8)
                writer.write(np.ascontiguousarray(_frame(pixels, size)[:, :, ::-1]))  # OpenCV wants BGR
        finally:
            writer.release()
    return os.fspath(path)

"""Detection training pictures streamed from disk through tf.data, with their anchor targets.

A picture is decoded by the runtime's reader and placed on the model's input as `edgekit run` places it:
scaled to fit with its aspect ratio kept, top-left, the rest black (the runtime's `letterbox`, which is the
unaugmented case here). Augmentation is google/automl EfficientDet's: scale jitter (the fitted picture
scaled again by a random factor, then a random window of the input's size cut from it where it is bigger)
and a horizontal flip, the boxes moved along. Boxes mostly cut off by the window are dropped.

Determinism as in `input_data`: an epoch's order is seeded by (seed, epoch), a picture's augmentation by
(seed, epoch, index). Imported only from inside training functions: it imports TensorFlow when a dataset is
built.
"""

from collections import namedtuple

import numpy as np
from PIL import Image

from edgekit.runtime import images
from edgekit.runtime.adapters.common import letterbox
from edgekit.runtime.tasks import DEFAULT_RESIZE, DETECTION
from edgekit.training.detection_targets import corner_anchors, match_anchors
from edgekit.training.input_data import epoch_order

RESIZE = DEFAULT_RESIZE[DETECTION]
FLIP_CHANCE = 0.5
# A box cut by the window keeps its object only when this share of it is still in the picture; less of an
# object is often not recognisable, and training the anchor there as that class teaches noise.
MIN_VISIBLE = 0.4
# Boxes thinner than this (input pixels) after scaling are dropped: the smallest anchors (level 3, stride 8) are
# several times larger, so such a box would only be matched by force, to an anchor that cannot see it.
MIN_SIDE = 4.0

Placed = namedtuple("Placed", "pixels boxes labels crowd")
"""A picture on the model's input: uint8 [H, W, 3]; boxes float32 [N, 4] (ymin, xmin, ymax, xmax) normalised
to the input; labels int32 [N]; crowd bool [N]."""


def letterboxed(picture, input_size):
    """A PIL picture on the model's input (height, width) as the runtime places it, and the scale applied."""
    height, width = input_size
    boxed = letterbox(picture.size, (width, height), lambda size: images.resize(picture, size, RESIZE))
    return boxed.canvas, boxed.scale


def _normalised(boxes, input_size):
    height, width = input_size
    xmin, ymin, xmax, ymax = boxes.T
    return np.stack([ymin / height, xmin / width, ymax / height, xmax / width], -1).astype(np.float32)


def place_picture(item, input_size, jitter=None, flip=False, seed=None):
    """`Placed` of one `labelled_boxes.BoxPicture`. jitter: (low, high) scale factors for augmentation, or None;
    flip: flip half the pictures; the draws seeded by `seed`. Neither: the runtime's own letterbox."""
    picture = images.load_image(item.path, "RGB")
    boxes = np.asarray(item.boxes, np.float32).reshape(-1, 4)
    # Boxes were measured on the picture's stored size; the reader turns EXIF-rotated pictures upright.
    if picture.size != (item.width, item.height) and item.width and item.height:
        boxes = boxes * np.array([picture.width / item.width, picture.height / item.height] * 2, np.float32)
    labels, crowd = np.asarray(item.labels, np.int32), np.asarray(item.crowd, bool)
    if jitter is None and not flip:
        pixels, scale = letterboxed(picture, input_size)
        return Placed(pixels, _normalised(boxes * scale, input_size), labels, crowd)
    rng = np.random.default_rng(seed)
    if flip and rng.uniform() < FLIP_CHANCE:
        picture = picture.transpose(Image.Transpose.FLIP_LEFT_RIGHT)
        boxes = np.stack([picture.width - boxes[:, 2], boxes[:, 1], picture.width - boxes[:, 0], boxes[:, 3]], -1)
    height, width = input_size
    fit = min(width / picture.width, height / picture.height) * (rng.uniform(*jitter) if jitter else 1.0)
    scaled = (max(1, int(round(picture.width * fit))), max(1, int(round(picture.height * fit))))
    left = int(rng.integers(0, scaled[0] - width + 1)) if scaled[0] > width else 0
    top = int(rng.integers(0, scaled[1] - height + 1)) if scaled[1] > height else 0
    resized = np.asarray(images.resize(picture, scaled, RESIZE), np.uint8)
    window = resized[top:top + height, left:left + width]
    pixels = np.zeros((height, width, 3), np.uint8)
    pixels[:window.shape[0], :window.shape[1]] = window
    factor = np.array([scaled[0] / picture.width, scaled[1] / picture.height] * 2, np.float32)
    moved = boxes * factor - np.array([left, top, left, top], np.float32)
    clipped = np.clip(moved, 0, [window.shape[1], window.shape[0]] * 2)
    area = np.prod(np.maximum(moved[:, 2:] - moved[:, :2], 1e-6), axis=1)
    sides = clipped[:, 2:] - clipped[:, :2]
    kept = (np.prod(np.maximum(sides, 0), axis=1) >= MIN_VISIBLE * area) & (sides.min(axis=1) >= MIN_SIDE)
    return Placed(pixels, _normalised(clipped[kept], input_size), labels[kept], crowd[kept])


def box_dataset(pictures, input_size, anchors, batch_size, seed=0, epoch=0, shuffle=False, jitter=None, flip=False):
    """A tf.data.Dataset of (float32 [B, H, W, 3] raw pixels, (box targets float32 [B, A, 5], class targets
    float32 [B, A])): the targets the detection losses take (`detection_loss`), the box targets' fifth column
    marking the anchors that learn an object. `pictures`: BoxPicture list; `anchors`: the model's normalised
    centre-form anchors; `jitter`, `flip`: augmentation (see `place_picture`)."""
    import tensorflow as tf

    height, width = (int(side) for side in input_size)
    anchors = np.asarray(anchors, np.float32)
    corners = corner_anchors(anchors)
    count = len(anchors)
    order = epoch_order(len(pictures), seed, epoch) if shuffle else np.arange(len(pictures))

    def load(index):
        index = int(index)
        placed = place_picture(pictures[index], (height, width), jitter, flip, (int(seed), int(epoch), index))
        targets = match_anchors(placed.boxes, placed.labels, placed.crowd, anchors, corners)
        box_targets = np.concatenate([targets.boxes, (targets.classes >= 0)[:, None].astype(np.float32)], 1)
        return placed.pixels, box_targets, targets.classes.astype(np.float32)

    def example(index):
        # stateful=False: `load` is a pure function of the index (see input_data.image_dataset on why).
        pixels, box_targets, class_targets = tf.numpy_function(load, [index], (tf.uint8, tf.float32, tf.float32),
                                                               stateful=False, name="load_picture_and_targets")
        pixels.set_shape((height, width, 3))
        box_targets.set_shape((count, 5))
        class_targets.set_shape((count,))
        return tf.cast(pixels, tf.float32), (box_targets, class_targets)

    dataset = tf.data.Dataset.from_tensor_slices(order.astype(np.int64))
    dataset = dataset.map(example, num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)
    return dataset.batch(batch_size).prefetch(tf.data.AUTOTUNE)


def input_pixels(item, input_size):
    """uint8 [H, W, 3] of a picture as the runtime feeds the detector, and the scale from picture pixels."""
    return letterboxed(images.load_image(item.path, "RGB"), input_size)

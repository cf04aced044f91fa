"""Training pictures streamed from disk through tf.data, never all in memory, as `edgekit run` will see them.

Each picture is decoded by the runtime's reader (`images.load_image`) and resized by the calibration's
`prepare`, the function `edgekit convert` calibrates with, so training, calibration and the deployed model
see the same pixels. Augmentation crops the decoded picture before it is resized.

Determinism: an epoch's order is a permutation seeded by (seed, epoch), and each picture's augmentation is
drawn from a generator seeded by (seed, epoch, the picture's index in its subset); tf.data's parallel map
keeps its input order (`deterministic=True`). So the same (seed, epoch) gives the same batches whatever the
parallelism, and epoch k of an interrupted run can be rebuilt on its own after a restart.

Imported only from inside training functions: it imports TensorFlow (when a dataset is built).
"""

import math

import numpy as np

from edgekit.calibration.data import Preprocess, prepare
from edgekit.runtime import images
from edgekit.runtime.tasks import CLASSIFICATION, DEFAULT_RESIZE

# Random resized crop: the share of the picture's area a crop covers and its width / height ratio. The ranges
# are Inception's (Szegedy et al. 2015, "Going deeper with convolutions", section 6: patches of 8% to 100% of
# the area, aspect ratio in [3/4, 4/3]), as TFLite Model Maker's image classifier uses them
# (model_maker/core/task/image_preprocessing.py, _decode_and_random_crop). The area is drawn uniformly, the
# ratio log-uniformly, and the fallback is the largest centred crop within the ratio range, as torchvision's
# RandomResizedCrop does.
CROP_AREA = (0.08, 1.0)
CROP_ASPECT = (3.0 / 4.0, 4.0 / 3.0)
# Tries at a crop that fits inside the picture before falling back (Model Maker's max_attempts, torchvision's).
CROP_ATTEMPTS = 10
FLIP_CHANCE = 0.5


def _preprocess(input_size, resize):
    height, width = input_size
    return Preprocess(size=(int(width), int(height)), resize=resize, letterbox=False)


def load_pixels(path, input_size, resize=DEFAULT_RESIZE[CLASSIFICATION]):
    """uint8 [H, W, 3] of the picture at `path` resized to `input_size` (height, width) by `resize` (a
    RESIZE_METHODS name): what `edgekit run` feeds a classifier."""
    return prepare(images.load_image(path, "RGB"), _preprocess(input_size, resize))


def crop_box(width, height, rng, crop_area=CROP_AREA):
    """(left, top, right, bottom) of a random crop of a `width` x `height` picture: an area share from
    `crop_area` (CROP_AREA by default) and an aspect ratio from CROP_ASPECT, up to CROP_ATTEMPTS tries to fit,
    else the largest centred crop whose aspect ratio is within CROP_ASPECT."""
    area = width * height
    low, high = math.log(CROP_ASPECT[0]), math.log(CROP_ASPECT[1])
    for _ in range(CROP_ATTEMPTS):
        target = area * rng.uniform(*crop_area)
        aspect = math.exp(rng.uniform(low, high))
        crop_width = int(round(math.sqrt(target * aspect)))
        crop_height = int(round(math.sqrt(target / aspect)))
        if 0 < crop_width <= width and 0 < crop_height <= height:
            left = int(rng.integers(0, width - crop_width + 1))
            top = int(rng.integers(0, height - crop_height + 1))
            return left, top, left + crop_width, top + crop_height
    ratio = width / height
    if ratio < CROP_ASPECT[0]:
        crop_width, crop_height = width, int(round(width / CROP_ASPECT[0]))
    elif ratio > CROP_ASPECT[1]:
        crop_width, crop_height = int(round(height * CROP_ASPECT[1])), height
    else:
        crop_width, crop_height = width, height
    left, top = (width - crop_width) // 2, (height - crop_height) // 2
    return left, top, left + crop_width, top + crop_height


def augmented_pixels(path, input_size, resize, seed, crop_area=CROP_AREA):
    """uint8 [H, W, 3] of a random resized crop of the picture at `path`, flipped left-right half the time.

    `seed`: an int or a sequence of ints (e.g. (seed, epoch, index)) for numpy's generator, which decides the
    crop and the flip; the same seed gives the same pixels.
    """
    rng = np.random.default_rng(seed)
    picture = images.load_image(path, "RGB")
    cropped = picture.crop(crop_box(picture.width, picture.height, rng, crop_area))
    pixels = prepare(cropped, _preprocess(input_size, resize))
    if rng.uniform() < FLIP_CHANCE:
        pixels = pixels[:, ::-1]
    return np.ascontiguousarray(pixels)


def epoch_order(count, seed, epoch):
    """The order of `count` pictures in epoch `epoch` (a permutation seeded by seed and epoch)."""
    return np.random.default_rng([int(seed), int(epoch)]).permutation(count)


def image_dataset(subset, input_size, num_classes, batch_size, seed=0, epoch=0, shuffle=False, augment=False,
                  resize=DEFAULT_RESIZE[CLASSIFICATION], drop_remainder=False, crop_area=CROP_AREA):
    """A tf.data.Dataset of (float32 [B, H, W, 3] raw pixels 0..255, float32 one-hot [B, num_classes]).

    `subset`: a labelled_data.Subset; `input_size`: (height, width). With `shuffle`, pictures come in
    `epoch_order(len, seed, epoch)`, else as listed; with `augment`, each is `augmented_pixels` with the seed
    (seed, epoch, its index in `subset`), else `load_pixels`.
    """
    import tensorflow as tf

    height, width = (int(side) for side in input_size)
    paths = list(subset.paths)
    labels = np.asarray(subset.labels, dtype=np.int64)
    order = epoch_order(len(paths), seed, epoch) if shuffle else np.arange(len(paths))

    def decode(index):
        # Paths stay Python strings, looked up by index: no file name goes through a tf.string and back.
        index = int(index)
        if augment:
            return augmented_pixels(paths[index], (height, width), resize, (int(seed), int(epoch), index),
                                    crop_area)
        return load_pixels(paths[index], (height, width), resize)

    def pixels_and_label(index, label):
        # stateful=False (decode is a pure function of the index): with op determinism on, TensorFlow runs a
        # map whose function has stateful ops serially and drops prefetching (enable_op_determinism's docs,
        # "Determinism and tf.data"), which would decode one picture at a time.
        pixels = tf.numpy_function(decode, [index], tf.uint8, stateful=False, name="decode_picture")
        pixels.set_shape((height, width, 3))
        return tf.cast(pixels, tf.float32), tf.one_hot(label, num_classes, dtype=tf.float32)

    # Only indices and labels are held; pictures are decoded as the map reaches them.
    dataset = tf.data.Dataset.from_tensor_slices((order.astype(np.int64), labels[order]))
    dataset = dataset.map(pixels_and_label, num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)
    return dataset.batch(batch_size, drop_remainder=drop_remainder).prefetch(tf.data.AUTOTUNE)

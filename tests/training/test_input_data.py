"""Training pictures stream from disk through tf.data with the pixels `edgekit run` and calibration see,
batches that depend only on (seed, epoch), Inception-style random crops, and memory that does not grow with
the number of pictures."""

import os
import tracemalloc

import numpy as np
import pytest
from picture_sets import digits_folder, odd_pictures, photo, photo_folder
from PIL import Image

from edgekit.calibration import data
from edgekit.runtime import images
from edgekit.runtime.tasks import CLASSIFICATION, DEFAULT_RESIZE
from edgekit.training import labelled_data

tf = pytest.importorskip("tensorflow")
from edgekit.training import input_data  # noqa: E402  (after the skip: it needs TensorFlow to stream)

RESIZE = DEFAULT_RESIZE[CLASSIFICATION]


@pytest.fixture(scope="module")
def photos(tmp_path_factory):
    """24 real photo crops (48 px JPEGs), four classes, as a Subset in listing order."""
    root = photo_folder(tmp_path_factory.mktemp("photos") / "data", per_class=6)
    splits = labelled_data.make_splits(root, val_split=0, test_split=0)
    return splits.train


def batches(dataset):
    """[(pixels, labels)] of a dataset as numpy arrays."""
    return [(x.numpy(), y.numpy()) for x, y in dataset]


def stacked(dataset):
    found = batches(dataset)
    return np.concatenate([x for x, _ in found]), np.concatenate([y for _, y in found])


def test_pixels_are_what_calibration_and_the_runtime_see(tmp_path):
    # A photo that is neither square nor the input size, as JPEG and PNG; input 40 high, 56 wide.
    picture = Image.fromarray(photo("coffee")[:300, :420])
    for name in ("coffee.jpg", "coffee.png"):
        path = str(tmp_path / name)
        picture.save(path)
        for resize in (RESIZE, "bilinear"):
            pixels = input_data.load_pixels(path, (40, 56), resize)
            assert pixels.shape == (40, 56, 3) and pixels.dtype == np.uint8
            calibrated = data.load_set(path, data.Preprocess((56, 40), resize, False), num_samples=1).pixels[0]
            np.testing.assert_array_equal(pixels, calibrated)
            np.testing.assert_array_equal(pixels, data.prepare(images.load_image(path), data.Preprocess(
                size=(56, 40), resize=resize, letterbox=False)))


def test_a_dataset_streams_every_picture_in_order_with_one_hot_labels(photos):
    dataset = input_data.image_dataset(photos, (32, 40), 4, 5)
    assert dataset.element_spec[0].shape.as_list() == [None, 32, 40, 3]
    assert dataset.element_spec[1].shape.as_list() == [None, 4]
    found = batches(dataset)
    assert [len(x) for x, _ in found] == [5, 5, 5, 5, 4]
    pixels, labels = stacked(input_data.image_dataset(photos, (32, 40), 4, 5))
    assert pixels.dtype == np.float32 and labels.dtype == np.float32
    expected = np.stack([input_data.load_pixels(p, (32, 40), RESIZE) for p in photos.paths]).astype(np.float32)
    np.testing.assert_array_equal(pixels, expected)
    np.testing.assert_array_equal(labels, np.eye(4, dtype=np.float32)[photos.labels])
    assert [len(x) for x, _ in batches(input_data.image_dataset(photos, (32, 40), 4, 5, drop_remainder=True))] \
        == [5, 5, 5, 5]


def test_the_same_seed_and_epoch_give_the_same_batches_whatever_the_parallelism(photos):
    def epoch(seed, number, threads=None):
        dataset = input_data.image_dataset(photos, (24, 24), 4, 8, seed=seed, epoch=number, shuffle=True,
                                           augment=True)
        if threads:
            options = tf.data.Options()
            options.threading.private_threadpool_size = threads
            dataset = dataset.with_options(options)
        return stacked(dataset)

    first = epoch(3, 0)
    for same in (epoch(3, 0), epoch(3, 0, threads=1)):
        np.testing.assert_array_equal(same[0], first[0])
        np.testing.assert_array_equal(same[1], first[1])
    # Epoch 0's order is the seeded permutation; epoch 1 (rebuilt on its own, as after a restart) is another.
    order = input_data.epoch_order(len(photos.paths), 3, 0)
    np.testing.assert_array_equal(first[1].argmax(axis=1), photos.labels[order])
    second = epoch(3, 1)
    assert not np.array_equal(input_data.epoch_order(24, 3, 1), order)
    np.testing.assert_array_equal(second[1].argmax(axis=1), photos.labels[input_data.epoch_order(24, 3, 1)])
    assert not np.array_equal(epoch(4, 0)[0], first[0])


def test_augmentation_changes_pixels_but_not_their_shape_or_labels(photos):
    plain = stacked(input_data.image_dataset(photos, (32, 32), 4, 6))
    augmented = stacked(input_data.image_dataset(photos, (32, 32), 4, 6, augment=True))
    assert augmented[0].shape == plain[0].shape == (24, 32, 32, 3)
    np.testing.assert_array_equal(augmented[1], plain[1])
    changed = [not np.array_equal(a, b) for a, b in zip(augmented[0], plain[0])]
    assert sum(changed) >= 20  # a crop of the whole picture, unflipped, is possible but rare
    # Each picture's augmentation is its own: seed (seed, epoch, index in the subset), whatever the order.
    path = photos.paths[7]
    again = input_data.augmented_pixels(path, (32, 32), RESIZE, (0, 0, 7))
    np.testing.assert_array_equal(again.astype(np.float32), augmented[0][7])


def test_random_crops_have_inceptions_area_and_aspect(tmp_path):
    small = 0
    for seed in range(300):
        left, top, right, bottom = input_data.crop_box(400, 300, np.random.default_rng(seed))
        assert 0 <= left < right <= 400 and 0 <= top < bottom <= 300
        width, height = right - left, bottom - top
        # Rounding the sides to whole pixels moves the ratio and the area a little past the drawn ones.
        assert 0.74 <= width / height <= 1.35
        assert 0.075 <= width * height / (400 * 300) <= 1.0
        small += width * height < 0.5 * 400 * 300
    assert 100 < small < 200  # the area is uniform in 8%..100% of the picture: about half the crops are small
    # No crop of 8% of the area with an allowed ratio fits in a strip 20 px high: the largest centred crop of
    # ratio 4/3 (27 x 20) is taken instead.
    for seed in range(20):
        assert input_data.crop_box(400, 20, np.random.default_rng(seed)) == (186, 0, 213, 20)


def test_an_augmented_picture_is_its_crop_resized_then_flipped_half_the_time(tmp_path):
    path = str(tmp_path / "chelsea.png")
    Image.fromarray(photo("chelsea")).save(path)
    picture = images.load_image(path)
    flipped = []
    for seed in range(12):
        rng = np.random.default_rng(seed)
        box = input_data.crop_box(picture.width, picture.height, rng)
        flip = rng.uniform() < input_data.FLIP_CHANCE
        cropped = data.prepare(picture.crop(box), data.Preprocess((30, 30), RESIZE, False))
        made = input_data.augmented_pixels(path, (30, 30), RESIZE, seed)
        np.testing.assert_array_equal(made, cropped[:, ::-1] if flip else cropped)
        flipped.append(flip)
    assert 0 < sum(flipped) < len(flipped)


def test_odd_pictures_come_out_rgb(tmp_path):
    odd = odd_pictures(tmp_path, size=32)
    found = {kind: input_data.load_pixels(path, (32, 32), RESIZE) for kind, path in odd.items()}
    for kind, pixels in found.items():
        assert pixels.shape == (32, 32, 3) and pixels.dtype == np.uint8, kind
    grey = found["grayscale"]
    assert (grey[..., 0] == grey[..., 1]).all() and (grey[..., 1] == grey[..., 2]).all()
    # The 16-bit PNG holds the grayscale picture's values times 257: scaled back, the same pixels.
    np.testing.assert_array_equal(found["16-bit"], grey)
    # RGBA: the transparent left half is composited on black, the opaque right half keeps the cat.
    assert (found["rgba"][:, :16] == 0).all() and found["rgba"][:, 16:].mean() > 40
    # CMYK comes back in colour, not as one grey channel.
    assert np.abs(found["cmyk"].astype(int)[..., 0] - found["cmyk"][..., 2]).mean() > 5
    subset = labelled_data.Subset(list(odd.values()), np.arange(4, dtype=np.int64))
    pixels, _ = stacked(input_data.image_dataset(subset, (32, 32), 4, 4, augment=True))
    assert pixels.shape == (4, 32, 32, 3)


SIDE = 48


def resident_bytes():
    """The process's resident memory now (Linux's /proc/self/statm), or None elsewhere."""
    try:
        with open("/proc/self/statm") as f:
            return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    except OSError:
        return None


def stream(subset, traced):
    """Read every batch of `subset` once and drop it: the growth of resident memory over the start (its highest,
    sampled at each batch), or with `traced`, the peak of what Python and numpy allocate (tracemalloc sees
    numpy's buffers too; TensorFlow's own allocations only the resident memory shows)."""
    if traced:
        tracemalloc.start()
    try:
        start = resident_bytes() or 0
        highest, count = start, 0
        for pixels, _ in input_data.image_dataset(subset, (SIDE, SIDE), 10, 50, shuffle=True, seed=1):
            count += int(pixels.shape[0])
            highest = max(highest, resident_bytes() or 0)
        assert count == len(subset.paths)
        return tracemalloc.get_traced_memory()[1] if traced else highest - start
    finally:
        tracemalloc.stop()


def test_pictures_are_never_all_in_memory(tmp_path, record_property):
    # 200 real digits on disk; 2,000 pictures are the same files listed ten times (an implementation that
    # kept pixels per file, or cached the dataset, would hold them all).
    root = digits_folder(tmp_path / "digits", per_class=20, size=SIDE)
    few = labelled_data.make_splits(root, val_split=0, test_split=0).train
    many = labelled_data.Subset(few.paths * 10, np.tile(few.labels, 10))
    stream(few, traced=False)  # the first dataset builds TensorFlow's functions and threads: not counted
    # All 2,000 pictures as the float32 batches they come in; a quarter of that is far above the noise.
    everything = len(many.paths) * SIDE * SIDE * 3 * 4
    # Resident memory first: memory freed by an earlier pass would be reused and hide a later one's growth.
    if resident_bytes() is not None:
        resident = stream(few, traced=False), stream(many, traced=False)
        record_property("resident_growth_bytes_200_2000", resident)
        assert resident[1] < resident[0] + everything / 4
    traced = stream(few, traced=True), stream(many, traced=True)
    record_property("traced_peak_bytes_200_2000", traced)
    assert traced[1] < traced[0] + everything / 4

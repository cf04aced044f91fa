"""The composite detection sets of box_sets.py: boxes exactly where the pasted pixels are, seeded bytes, splits
that share no object or photo, the variety a detector trainer must cope with, and every writer read back."""

import csv
import filecmp
import os
import time
from collections import defaultdict
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from box_sets import (BACKGROUNDS, CLASS_NAMES, CROWDED_FEWEST, DISTRACTOR, MOST_SHARED, SIZES, SPLITS,
                      Composite, coin_cuts, composed_pictures, composite_pictures, composite_set, object_cut,
                      overlap_share, split_sources, write_coco, write_csv, write_video, write_voc, write_yolo)
from edgekit.errors import EdgekitError
from edgekit.evaluation import datasets


def _iou(a, b):
    width = min(a[2], b[2]) - max(a[0], b[0])
    height = min(a[3], b[3]) - max(a[1], b[1])
    if width <= 0 or height <= 0:
        return 0.0
    both = width * height
    return both / ((a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - both)


def _picture_size(path):
    with Image.open(path) as picture:
        return picture.size


def _truth(pictures):
    """[(sorted [(label, box)])] of Composites, to compare with what a reader gives back."""
    return [sorted(zip(p.labels, (tuple(float(v) for v in box) for box in p.boxes))) for p in pictures]


def _read_back(dataset, names_of):
    """{picture file stem: sorted [(label, (xmin, ymin, xmax, ymax))]} of an edgekit DetectionSet."""
    found = {Path(path).stem: [] for path, _, _ in dataset.images.values()}
    for annotation in dataset.annotations:
        x, y, w, h = annotation["bbox"]
        stem = Path(dataset.images[annotation["image_id"]][0]).stem
        found[stem].append((names_of[annotation["category_id"]], (x, y, x + w, y + h)))
    return {stem: sorted(boxes) for stem, boxes in found.items()}


def _assert_same(expected, found, tolerance):
    assert [label for label, _ in expected] == [label for label, _ in found]
    for (_, box), (_, read) in zip(expected, found):
        np.testing.assert_allclose(read, box, atol=tolerance)


def test_every_box_holds_exactly_its_pasted_object():
    pictures = composed_pictures(40, "train", seed=5, distractor_share=0.3)
    checked = defaultdict(int)
    for composed in pictures:
        pixels = composed.composite.pixels
        height, width = pixels.shape[:2]
        for number, placement in enumerate(composed.placements):
            x0, y0, x1, y1 = placement.box
            assert 0 <= x0 < x1 <= width and 0 <= y0 < y1 <= height
            cut = object_cut(placement.kind, placement.source, placement.resized, placement.angle, placement.flip)
            assert cut.mask.shape == (y1 - y0, x1 - x0)
            # The box is tight: the object reaches each of its four edges.
            assert cut.mask[0].any() and cut.mask[-1].any() and cut.mask[:, 0].any() and cut.mask[:, -1].any()
            covered = np.zeros(cut.mask.shape, bool)
            for later in composed.placements[number + 1:]:
                covered[max(later.box[1] - y0, 0):max(later.box[3] - y0, 0),
                        max(later.box[0] - x0, 0):max(later.box[2] - x0, 0)] = True
            visible = cut.mask & ~covered
            assert visible.sum() >= (1 - MOST_SHARED) * cut.mask.sum()  # touching, never hidden
            region = pixels[y0:y1, x0:x1]
            assert np.array_equal(region[visible], np.repeat(cut.grey[visible][:, None], 3, axis=1))
            if placement.kind == "face":
                assert cut.mask.all()  # a face is pasted as a whole rectangle
            checked[placement.kind] += 1
        boxed = [p for p in composed.placements if p.kind != DISTRACTOR]
        assert composed.composite.boxes == [p.box for p in boxed]
        assert composed.composite.labels == [p.kind for p in boxed]
    assert min(checked[kind] for kind in (*CLASS_NAMES, DISTRACTOR)) >= 10, checked


def test_the_objects_are_the_sources_own_pixels():
    from skimage import data

    faces = data.lfw_subset()
    faces = np.round(faces * 255).astype(np.uint8) if faces.dtype != np.uint8 else faces
    face = object_cut("face", 7, (25, 25))
    assert np.array_equal(face.grey, faces[7]) and face.mask.all()
    assert np.array_equal(object_cut("face", 7, (25, 25), flip=True).grey, faces[7][:, ::-1])
    stretched = np.asarray(Image.fromarray(faces[7]).resize((40, 31), Image.Resampling.BILINEAR))
    assert np.array_equal(object_cut("face", 7, (40, 31)).grey, stretched)
    assert np.array_equal(object_cut(DISTRACTOR, 3, (25, 25)).grey, faces[103])

    coins = data.coins()
    cuts = coin_cuts()
    assert len(cuts) == 24  # every coin of the photo, each alone
    for number, cut in enumerate(cuts):
        height, width = cut.mask.shape
        assert 32 <= min(height, width) and max(height, width) <= 66, (number, cut.mask.shape)
        # Round: the mask fills about a disc of the box (pi / 4 of it).
        assert 0.85 * np.pi / 4 <= cut.mask.mean() <= 1.05 * np.pi / 4, (number, cut.mask.mean())
        assert cut.grey[cut.mask].mean() > coins.mean()  # the coins are brighter than the table
        whole = object_cut("coin", number, (width, height))
        assert np.array_equal(whole.grey, cut.grey) and np.array_equal(whole.mask, cut.mask)


def test_same_seed_same_bytes_and_another_seed_other_pictures(tmp_path):
    first, again = composite_pictures(12, "test", seed=7), composite_pictures(12, "test", seed=7)
    other = composite_pictures(12, "test", seed=8)
    assert all(np.array_equal(a.pixels, b.pixels) and a.boxes == b.boxes and a.labels == b.labels
               for a, b in zip(first, again))
    assert not any(np.array_equal(a.pixels, b.pixels) for a, b in zip(first, other))
    one = composite_set(tmp_path / "one", "coco", train=6, val=2, test=3, seed=4)
    two = composite_set(tmp_path / "two", "coco", train=6, val=2, test=3, seed=4)
    files = sorted(str(p.relative_to(one)) for p in Path(one).rglob("*") if p.is_file())
    assert len(files) == 6 + 2 + 3 + 3
    assert files == sorted(str(p.relative_to(two)) for p in Path(two).rglob("*") if p.is_file())
    _, mismatch, errors = filecmp.cmpfiles(one, two, files, shallow=False)
    assert mismatch == [] and errors == []


def test_splits_share_no_object_and_no_photo():
    for kind in (*CLASS_NAMES, DISTRACTOR):
        parts = [set(split_sources(kind, split)) for split in SPLITS]
        assert all(parts), kind
        assert sum(len(p) for p in parts) == len(set().union(*parts))  # disjoint, every instance dealt once
    assert len(set(split_sources("coin", "train"))) == 14 and len(set(split_sources("face", "test"))) == 25
    assert sum(len(names) for names in BACKGROUNDS.values()) == len(set().union(*BACKGROUNDS.values()))

    used = {}
    for split in SPLITS:
        pictures = composed_pictures(60, split, seed=3, distractor_share=0.3)
        used[split] = ({(p.kind, p.source) for c in pictures for p in c.placements}, {c.background for c in pictures})
        assert used[split][1] <= set(BACKGROUNDS[split])
    for a, b in (("train", "val"), ("train", "test"), ("val", "test")):
        assert not used[a][0] & used[b][0] and not used[a][1] & used[b][1], (a, b)
    # Pixel for pixel too: no training face is a copy of a test face (a person photographed twice would be).
    train_faces = {object_cut("face", s, (25, 25)).grey.tobytes() for s in split_sources("face", "train")}
    assert not any(object_cut("face", s, (25, 25)).grey.tobytes() in train_faces
                   for s in split_sources("face", "test"))


def test_sizes_counts_and_crowds_a_detector_must_cope_with(record_property):
    started = time.perf_counter()
    pictures = composite_pictures(300, "train", seed=11)
    record_property("box_sets seconds per 1,000 pictures", round((time.perf_counter() - started) / 0.3, 2))
    assert sum(not p.boxes for p in pictures) == 15  # empty_share 0.05
    assert sum(len(p.boxes) >= CROWDED_FEWEST for p in pictures) == 30  # crowded_share 0.1
    assert {(p.pixels.shape[1], p.pixels.shape[0]) for p in pictures} == set(SIZES)
    assert all(p.pixels.dtype == np.uint8 and p.pixels.shape[2] == 3 for p in pictures)
    sides = [(max(b[2] - b[0], b[3] - b[1]), min(p.pixels.shape[:2])) for p in pictures for b in p.boxes]
    assert min(side for side, _ in sides) <= 16
    assert sum(side <= 20 for side, _ in sides) >= 0.1 * len(sides)
    assert max(side / shorter for side, shorter in sides) >= 0.4
    labels = [label for p in pictures for label in p.labels]
    assert {label: labels.count(label) / len(labels) for label in CLASS_NAMES} == pytest.approx(
        {label: 0.5 for label in CLASS_NAMES}, abs=0.06)
    for p in pictures:
        for i, a in enumerate(p.boxes):
            for b in p.boxes[i + 1:]:
                assert overlap_share(a, b) <= MOST_SHARED and _iou(a, b) < 0.3
    one_size = composite_pictures(5, "val", sizes=(200, 120), empty_share=0, crowded_share=0)
    assert {p.pixels.shape for p in one_size} == {(120, 200, 3)} and all(p.boxes for p in one_size)


def test_coco_files_read_back_with_the_same_boxes(tmp_path):
    splits = {"train": composite_pictures(10, "train", seed=2), "test": composite_pictures(5, "test", seed=2)}
    folder = write_coco(tmp_path / "coco", splits)
    assert sorted(os.listdir(Path(folder) / "annotations")) == ["instances_test.json", "instances_train.json"]
    for split, pictures in splits.items():
        dataset = datasets.read_coco(Path(folder) / "annotations" / f"instances_{split}.json", folder)
        assert dataset.categories == {1: "face", 2: "coin"}
        found = _read_back(dataset, dataset.categories)
        assert sorted(found) == [f"{split}_{i:05d}" for i in range(len(pictures))]
        for index, expected in enumerate(_truth(pictures)):
            _assert_same(expected, found[f"{split}_{index:05d}"], 0)
        assert all(a["iscrowd"] == 0 and a["area"] == a["bbox"][2] * a["bbox"][3] for a in dataset.annotations)
        assert all(_picture_size(path) == (w, h) for path, w, h in dataset.images.values())
    # One split alone is a folder `edgekit eval --data` finds by itself.
    alone = datasets.detection_set(composite_set(tmp_path / "alone", "coco", train=4, test=0, seed=2))
    assert alone.format == "coco" and len(alone.samples) == 4


def test_voc_files_read_back_with_the_same_boxes(tmp_path):
    splits = {"train": composite_pictures(8, "train", seed=3), "val": composite_pictures(4, "val", seed=3)}
    dataset = datasets.detection_set(write_voc(tmp_path / "voc", splits))
    assert dataset.format == "voc" and sorted(dataset.categories.values()) == sorted(CLASS_NAMES)
    found = _read_back(dataset, dataset.categories)
    for split, pictures in splits.items():
        stems = (tmp_path / "voc" / "ImageSets" / "Main" / f"{split}.txt").read_text().split()
        assert stems == [f"{split}_{i:05d}" for i in range(len(pictures))]
        for stem, expected in zip(stems, _truth(pictures)):
            _assert_same(expected, found[stem], 0)


def test_yolo_files_read_back_with_the_same_boxes(tmp_path):
    splits = {"train": composite_pictures(8, "train", seed=4), "test": composite_pictures(4, "test", seed=4)}
    folder = write_yolo(tmp_path / "yolo", splits)
    dataset = datasets.detection_set(folder)
    assert dataset.format == "yolo" and dataset.categories == {0: "face", 1: "coin"}
    found = _read_back(dataset, dataset.categories)
    assert len(found) == 12
    for split, pictures in splits.items():
        assert len(os.listdir(Path(folder) / "labels" / split)) == len(pictures)  # empty pictures get a file too
        for index, expected in enumerate(_truth(pictures)):
            _assert_same(expected, found[f"{split}_{index:05d}"], 1e-6)
    yaml = (Path(folder) / "data.yaml").read_text()
    assert "train: images/train\n" in yaml and "test: images/test\n" in yaml and "val:" not in yaml


def test_csv_rows_are_model_makers_with_normalized_corners(tmp_path):
    splits = {"train": composite_pictures(10, "train", seed=6, empty_share=0.2),
              "val": composite_pictures(3, "val", seed=6), "test": composite_pictures(4, "test", seed=6)}
    path = write_csv(tmp_path / "csv", splits)
    assert path.endswith(".csv")
    with open(path, newline="", encoding="utf-8") as f:
        rows = list(csv.reader(f))
    found = defaultdict(list)
    for row in rows:
        assert len(row) == 11 and row[5:7] == ["", ""] and row[9:] == ["", ""], row
        picture = os.path.join(os.path.dirname(path), row[1])
        width, height = _picture_size(picture)
        if row[2]:
            corners = [float(row[3]) * width, float(row[4]) * height, float(row[7]) * width, float(row[8]) * height]
            assert all(0 <= float(row[k]) <= 1 for k in (3, 4, 7, 8))
            found[(row[0], row[1])].append((row[2], tuple(corners)))
        else:
            assert row[3:] == [""] * 8
            found[(row[0], row[1])] += []
    names = {"train": "TRAIN", "val": "VALIDATION", "test": "TEST"}
    assert len(found) == 17
    for split, pictures in splits.items():
        for index, expected in enumerate(_truth(pictures)):
            _assert_same(expected, sorted(found[(names[split], f"images/{split}_{index:05d}.jpg")]), 1e-6)
    assert sum(not p.boxes for p in splits["train"]) == 2


@pytest.mark.parametrize("suffix", [".avi", ".mp4"])
def test_video_reads_back_one_frame_per_picture(tmp_path, suffix):
    cv2 = pytest.importorskip("cv2")
    pictures = composite_pictures(7, "test", seed=1)
    path = write_video(tmp_path / f"pictures{suffix}", pictures, fps=5, size=(320, 240))
    capture = cv2.VideoCapture(path)
    try:
        assert capture.isOpened()
        assert int(capture.get(cv2.CAP_PROP_FRAME_COUNT)) == 7
        frames = []
        while True:
            ok, frame = capture.read()
            if not ok:
                break
            frames.append(frame[:, :, ::-1])
    finally:
        capture.release()
    assert len(frames) == 7 and all(f.shape == (240, 320, 3) for f in frames)
    # Each frame is its picture fitted inside 320x240 (a 320x240 picture fills it), up to the codec's loss.
    for frame, picture in zip(frames, pictures):
        height, width = picture.pixels.shape[:2]
        scale = min(320 / width, 240 / height)
        fitted = np.asarray(Image.fromarray(picture.pixels).resize((round(width * scale), round(height * scale)),
                                                                   Image.Resampling.BILINEAR))
        top, left = (240 - fitted.shape[0]) // 2, (320 - fitted.shape[1]) // 2
        inside = frame[top:top + fitted.shape[0], left:left + fitted.shape[1]]
        assert np.abs(inside.astype(int) - fitted).mean() < 12


def test_bad_arguments_say_what_to_use(tmp_path):
    with pytest.raises(EdgekitError, match="unknown split 'validation'; use one of train, val, test"):
        composite_pictures(3, "validation")
    with pytest.raises(EdgekitError, match="unknown format 'kitti'; use one of coco, voc, yolo, csv"):
        composite_set(tmp_path, "kitti")
    with pytest.raises(EdgekitError, match="cannot hold 6 empty and 6 crowded ones"):
        composite_pictures(10, empty_share=0.6, crowded_share=0.6)
    with pytest.raises(EdgekitError, match=r"\.gif video; name it \.avi or \.mp4"):
        write_video(tmp_path / "x.gif", [Composite(np.zeros((32, 32, 3), np.uint8), [], [])])
    assert not os.listdir(tmp_path)

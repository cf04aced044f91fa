"""Calibration sources: folders, globs, lists, video, COCO / YOLO / VOC layouts; seeded balanced sampling;
preprocessing through the runtime's own functions; skipped files counted."""

import json
import os

import numpy as np
import pytest
from PIL import Image

from edgekit.calibration import data, sources
from edgekit.runtime import images
from edgekit.runtime.adapters import common


def picture(path, size=(40, 30), value=None, seed=0):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    rng = np.random.default_rng(seed)
    pixels = rng.integers(0, 256, (size[1], size[0], 3), dtype=np.uint8) if value is None else \
        np.full((size[1], size[0], 3), value, np.uint8)
    Image.fromarray(pixels).save(path)
    return str(path)


def test_folder_is_recursive_sorted_and_stratified(tmp_path):
    for k in range(3):
        picture(tmp_path / "cats" / f"{k}.png")
    picture(tmp_path / "dogs" / "deep" / "d.jpg")
    picture(tmp_path / "top.bmp")
    (tmp_path / "notes.txt").write_text("x")
    (tmp_path / ".hidden").mkdir()
    picture(tmp_path / ".hidden" / "h.png")
    source = sources.find_items(tmp_path)
    assert source.kind == "folder"
    assert [os.path.relpath(i.path, tmp_path) for i in source.items] == [
        "top.bmp", "cats/0.png", "cats/1.png", "cats/2.png", "dogs/deep/d.jpg"]
    assert [i.stratum for i in source.items] == ["", "cats", "cats", "cats", "dogs"]


def test_sampling_is_seeded_and_balanced():
    items = [sources.Item(f"a{k}", None, "a") for k in range(10)] + [sources.Item(f"b{k}", None, "b") for k in range(2)]
    order = sources.sample_order(items, seed=3)
    assert order == sources.sample_order(items, seed=3)
    assert order != sources.sample_order(items, seed=4)
    assert sorted(i.stratum for i in order[:4]) == ["a", "a", "b", "b"]   # the small stratum is not drowned
    assert sorted(order) == sorted(items)


def test_glob_and_list(tmp_path):
    paths = [picture(tmp_path / "x" / f"{k}.png") for k in range(3)]
    source = sources.find_items(str(tmp_path / "x" / "*.png"))
    assert source.kind == "glob" and [i.path for i in source.items] == paths
    listing = tmp_path / "list.txt"
    listing.write_text("# calibration\nx/0.png\n\n" + paths[2] + "  # absolute\nx/missing.png\n")
    source = sources.find_items(listing)
    assert source.kind == "list"
    assert [i.path for i in source.items] == [str(tmp_path / "x" / "0.png"), paths[2],
                                              str(tmp_path / "x" / "missing.png")]


def test_dataset_layouts(tmp_path):
    voc = tmp_path / "voc"
    picture(voc / "JPEGImages" / "a.jpg")
    os.makedirs(voc / "Annotations")
    assert sources.find_items(voc).kind == "voc"
    yolo = tmp_path / "yolo"
    picture(yolo / "images" / "train" / "a.jpg")
    picture(yolo / "images" / "val" / "b.jpg")
    os.makedirs(yolo / "labels" / "train")
    found = sources.find_items(yolo)
    assert found.kind == "yolo" and [i.stratum for i in found.items] == ["train", "val"]
    coco = tmp_path / "coco"
    picture(coco / "val2017" / "1.jpg")
    os.makedirs(coco / "annotations")
    (coco / "annotations" / "instances_val2017.json").write_text(json.dumps(
        {"images": [{"id": 1, "file_name": "1.jpg"}, {"id": 2, "file_name": "gone.jpg"}], "annotations": []}))
    found = sources.find_items(coco)
    assert found.kind == "coco"
    assert [os.path.relpath(i.path, coco) for i in found.items] == ["val2017/1.jpg", "val2017/gone.jpg"]


def test_video_every_kth_frame(tmp_path):
    cv2 = pytest.importorskip("cv2")
    path = str(tmp_path / "clip.avi")
    writer = cv2.VideoWriter(path, cv2.VideoWriter_fourcc(*"MJPG"), 10, (48, 32))
    for k in range(25):
        writer.write(np.full((32, 48, 3), k * 10, np.uint8))
    writer.release()
    source = sources.find_items(path, video_every=5)
    assert source.kind == "video" and [i.frame for i in source.items] == [0, 5, 10, 15, 20]
    loaded = data.load_set(path, data.Preprocess((16, 16), "nearest", False), num_samples=5, video_every=5)
    assert loaded.pixels.shape == (5, 16, 16, 3)
    # Frame k was filled with grey 10k; JPEG keeps it within a few levels.
    means = sorted(float(p.mean()) for p in loaded.pixels)
    assert np.allclose(means, [0, 50, 100, 150, 200], atol=4)


def test_errors(tmp_path):
    with pytest.raises(sources.CalibrationDataError, match="no such calibration folder"):
        sources.find_items(tmp_path / "nope")
    (tmp_path / "empty").mkdir()
    with pytest.raises(sources.CalibrationDataError, match="no images found"):
        sources.find_items(tmp_path / "empty")
    (tmp_path / "model.bin").write_bytes(b"x")
    with pytest.raises(sources.CalibrationDataError, match="not a calibration source"):
        sources.find_items(tmp_path / "model.bin")


def test_preprocessing_is_the_runtimes(tmp_path):
    path = picture(tmp_path / "p.png", size=(64, 40), seed=5)
    loaded = data.load_set(tmp_path, data.Preprocess((24, 24), "tflite-bilinear", False), num_samples=1)
    expected = np.asarray(images.resize(images.load_image(path), (24, 24), "tflite-bilinear"))
    assert np.array_equal(loaded.pixels[0], expected)
    boxed = data.load_set(tmp_path, data.Preprocess((24, 24), "bilinear", True), num_samples=1)
    picture_ = images.load_image(path)
    canvas = common.letterbox(picture_.size, (24, 24), lambda s: images.resize(picture_, s, "bilinear")).canvas
    assert np.array_equal(boxed.pixels[0], canvas) and not boxed.pixels[0][20:].any()   # padded bottom


def test_skipped_files_counted_and_replaced(tmp_path):
    for k in range(4):
        picture(tmp_path / f"{k}.png", seed=k)
    (tmp_path / "bad.png").write_bytes(b"\x89PNG broken")
    loaded = data.load_set(tmp_path, data.Preprocess((8, 8), "nearest", False), num_samples=4)
    assert len(loaded.pixels) == 4 and len(loaded.skipped) == 1 and "bad.png" in loaded.skipped[0][1]
    summary, warnings = data.summary(loaded, 4)
    assert summary["skipped"] == 1 and summary["used"] == 4
    assert any("fewer than 100" in w for w in warnings) and any("1 calibration files skipped" in w for w in warnings)
    again = data.load_set(tmp_path, data.Preprocess((8, 8), "nearest", False), num_samples=4)
    assert again.digest == loaded.digest


def test_all_junk_is_an_error(tmp_path):
    for k in range(3):
        (tmp_path / f"{k}.jpg").write_bytes(b"junk")
    with pytest.raises(sources.CalibrationDataError, match=r"none of the 3 calibration files could be read"):
        data.load_set(tmp_path, data.Preprocess((8, 8), "nearest", False))


def test_progress_bar_on_stderr_only_when_asked(capsys):
    import io

    stream = io.StringIO()
    bar = data.Progress(3, "calibration images", stream=stream, enabled=True)
    for _ in range(3):
        bar.update()
    bar.close()
    assert stream.getvalue().rstrip().endswith("3/3") and "\r" in stream.getvalue()
    quiet = data.Progress(3, "x", stream=stream, enabled=False)
    quiet.update()
    assert stream.getvalue().count("\n") == 1

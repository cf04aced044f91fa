"""`edgekit convert` (calibration) and `edgekit eval` see the same pictures: one suffix list, one listing,
one reading of the COCO / YOLO / VOC layouts (edgekit/image_folders.py)."""

import json

import pytest
from PIL import Image

from edgekit.calibration import data, sources
from edgekit.evaluation import datasets, evaluate

MEDIUM = "mobilenet_v1_0.5_160_quant.tflite"


@pytest.mark.usefixtures("no_edgetpu_library")
def test_webp_and_tiff_are_pictures_to_calibrate_and_evaluate_on(tmp_path, coral):
    # Eval used to know only .png/.jpg/.jpeg/.bmp and skipped these; lossless, so the pixels are cat.bmp's.
    root = tmp_path / "photos"
    (root / "Egyptian cat").mkdir(parents=True)
    with Image.open(coral("cat.bmp")) as cat:
        cat.save(root / "Egyptian cat" / "cat.webp", lossless=True)
        cat.save(root / "Egyptian cat" / "cat.tif")
    expected = [str(root / "Egyptian cat" / name) for name in ("cat.tif", "cat.webp")]

    source = sources.find_items(root)
    assert source.kind == "folder" and [i.path for i in source.items] == expected
    loaded = data.load_set(root, data.Preprocess((32, 32), "nearest", False), num_samples=2)
    assert loaded.pixels.shape == (2, 32, 32, 3) and not loaded.skipped

    assert [s.image for s in datasets.image_folder(root).samples] == expected
    report = evaluate.evaluate([coral(MEDIUM)], root, labels_path=coral("imagenet_labels.txt"), device="cpu",
                               progress=False)
    assert report.images == 2 and report.classes == 1
    # Coral's expectation for cat.bmp: the 0.5/160 model finds the Egyptian cat (286) in both copies.
    assert report.models[0].top1 == 1.0
    assert report.models[0].per_class == [evaluate.ClassScore(286, "Egyptian cat", 2, 1.0)]


def seen_by_both(folder):
    """(kind, pictures) of `folder` as calibration's source, then as eval's detection data."""
    source, dataset = sources.find_items(folder), datasets.detection_set(folder)
    return (source.kind, [i.path for i in source.items]), (dataset.format, [s.image for s in dataset.samples])


def test_both_commands_read_a_dataset_layout_the_same_way(tmp_path):
    # Exported as YOLO and as COCO at once: labels/ decides, for convert and eval alike.
    both = tmp_path / "both"
    (both / "images").mkdir(parents=True)
    Image.new("RGB", (32, 24), (200, 30, 30)).save(both / "images" / "a.png")
    (both / "labels").mkdir()
    (both / "labels" / "a.txt").write_text("0 0.5 0.5 0.5 0.5\n")
    (both / "annotations").mkdir()
    (both / "annotations" / "instances_val.json").write_text(json.dumps(
        {"images": [{"id": 1, "file_name": "a.png", "width": 32, "height": 24}], "annotations": [],
         "categories": [{"id": 1, "name": "thing"}]}))
    picture = str(both / "images" / "a.png")
    assert seen_by_both(both) == (("yolo", [picture]), ("yolo", [picture]))

    # VOC without JPEGImages/: Annotations/ is enough, and images/ is where its pictures are, for both.
    voc = tmp_path / "voc"
    (voc / "images").mkdir(parents=True)
    Image.new("RGB", (32, 24)).save(voc / "images" / "b.jpg")
    (voc / "Annotations").mkdir()
    (voc / "Annotations" / "b.xml").write_text("<annotation><filename>b.jpg</filename><object><name>thing</name>"
                                               "<bndbox><xmin>1</xmin><ymin>2</ymin><xmax>9</xmax><ymax>8</ymax>"
                                               "</bndbox></object></annotation>")
    picture = str(voc / "images" / "b.jpg")
    assert seen_by_both(voc) == (("voc", [picture]), ("voc", [picture]))

"""Label files in the three formats pycoral reads, the real test data files, and short label files."""

import warnings

import pytest

from edgekit.errors import EdgekitError
from edgekit.runtime import labels


def write(tmp_path, text, name="labels.txt"):
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def test_one_label_per_line(tmp_path):
    path = write(tmp_path, "background\ntench, Tinca tinca\n\ngoldfish\n")
    assert labels.read_label_file(path) == {0: "background", 1: "tench, Tinca tinca", 2: "", 3: "goldfish"}


def test_numbered_with_space_and_with_colon(tmp_path):
    assert labels.read_label_file(write(tmp_path, "0  person\n1 bicycle\n3   motor cycle \n")) == {
        0: "person", 1: "bicycle", 3: "motor cycle"}
    assert labels.read_label_file(write(tmp_path, "0: cat\n1:dog\n17 :  hot dog\n")) == {
        0: "cat", 1: "dog", 17: "hot dog"}


def test_mixed_lines_follow_pycoral(tmp_path):
    # A line without a leading number takes its line index, whatever the other lines say.
    assert labels.read_label_file(write(tmp_path, "5 five\nplain\n2nd place\n")) == {
        5: "five", 1: "plain", 2: "2nd place"}


def test_utf8_with_bom_and_errors(tmp_path):
    path = tmp_path / "bom.txt"
    path.write_bytes("\ufeffcafé\nnaïve\n".encode("utf-8"))
    assert labels.read_label_file(path) == {0: "café", 1: "naïve"}
    latin1 = tmp_path / "latin1.txt"
    latin1.write_bytes("caf\xe9\n".encode("latin-1"))
    with pytest.raises(EdgekitError, match="latin1.txt: not a UTF-8"):
        labels.read_label_file(latin1)
    with pytest.raises(EdgekitError, match="no such label file"):
        labels.read_label_file(tmp_path / "absent.txt")


def test_coral_label_files(coral):
    imagenet = labels.read_label_file(coral("imagenet_labels.txt"))
    assert len(imagenet) == 1001 and imagenet[0] == "background" and imagenet[286] == "Egyptian cat"
    assert imagenet[283] == "tiger cat"
    coco = labels.read_label_file(coral("coco_labels.txt"))
    assert len(coco) == 90 and coco[16] == "cat" and coco[0] == "person"
    pascal = labels.read_label_file(coral("pascal_voc_segmentation_labels.txt"))
    assert pascal[3] == "bird"


def test_unknown_ids_are_named_by_number():
    found = {0: "cat", 1: ""}
    assert labels.label_name(found, 0) == "cat"
    assert labels.label_name(found, 1) == "class 1"
    assert labels.label_name(found, 7) == "class 7"
    assert labels.label_name(None, 3) == "class 3"


def test_short_label_file_warns_once(tmp_path):
    found = {i: f"l{i}" for i in range(8)}
    message = labels.missing_labels_message(found, 10, "short.txt")
    assert message.startswith("short.txt: 8 labels for a model with 10 classes") and "8, 9" in message
    assert labels.missing_labels_message(found, 8, "short.txt") is None
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("default")
        for _ in range(3):
            assert labels.check_labels(found, 10, "short.txt") is True
        assert labels.check_labels(found, 8, "short.txt") is False
    assert len(caught) == 1 and issubclass(caught[0].category, labels.LabelWarning)

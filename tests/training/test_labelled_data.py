"""`edgekit train`'s data: class folders and CSV files read, every picture decoded once before training,
stratified seeded splits, and one exact line for each thing a user can get wrong."""

import os
import shutil
import warnings

import numpy as np
import pytest
from picture_sets import (digits_folder, odd_pictures, photo_folder, write_csv, write_not_an_image,
                          write_truncated_jpeg)

from edgekit.errors import EdgekitError
from edgekit.runtime import images
from edgekit.training import labelled_data
from edgekit.training.labelled_data import Subset, TrainingDataError, class_counts, make_splits, read_labelled


def raised(call, *args, **kwargs):
    """The message of the TrainingDataError that call(*args, **kwargs) raises (exit code 2, as the CLI uses)."""
    with pytest.raises(TrainingDataError) as caught:
        call(*args, **kwargs)
    assert caught.value.exit_code == 2
    return str(caught.value)


@pytest.fixture(scope="module")
def photos(tmp_path_factory):
    """Four classes of six real photo crops each (chelsea, coffee, astronaut, rocket)."""
    return photo_folder(tmp_path_factory.mktemp("photos") / "data", per_class=6)


@pytest.fixture(scope="module")
def digits(tmp_path_factory):
    """Ten classes of 20 real handwritten digits each, 32 px."""
    return digits_folder(tmp_path_factory.mktemp("digits") / "data", per_class=20, size=32)


def relative(paths, root):
    return [os.path.relpath(path, root) for path in paths]


# --- reading -------------------------------------------------------------------------------------------------

def test_a_class_folder_is_read_recursively_with_hidden_files_and_loose_pictures_left_out(tmp_path, photos):
    root = tmp_path / "data"
    shutil.copytree(photos, root)
    shutil.copy(root / "coffee" / "000.jpg", root / "loose.jpg")
    (root / "rocket" / "night").mkdir()
    shutil.copy(root / "rocket" / "000.jpg", root / "rocket" / "night" / "n.jpg")
    shutil.copy(root / "rocket" / "000.jpg", root / "rocket" / ".hidden.jpg")
    (root / ".thumbnails").mkdir()
    shutil.copy(root / "rocket" / "000.jpg", root / ".thumbnails" / "t.jpg")
    (root / "rocket" / "notes.txt").write_text("not a picture")

    found = read_labelled(root)
    assert found.kind == "folder" and found.splits is None and found.source == str(root)
    assert sorted(set(found.labels)) == ["astronaut", "chelsea", "coffee", "rocket"]
    rocket = [path for path, label in zip(found.paths, found.labels) if label == "rocket"]
    assert relative(rocket, root) == [f"rocket/{k:03d}.jpg" for k in range(6)] + ["rocket/night/n.jpg"]
    assert len(found.paths) == 25
    assert found.warnings == [f"{root}: 1 picture directly in the folder ignored (first: loose.jpg): only "
                              "pictures inside class sub-folders are used"]


def test_a_csv_file_is_read_with_relative_and_absolute_paths_a_header_and_a_split_column(tmp_path, photos):
    cat, coffee = os.path.join(photos, "chelsea", "000.jpg"), os.path.join(photos, "coffee", "001.jpg")
    shutil.copy(cat, tmp_path / "cat.jpg")
    listing = write_csv(tmp_path / "lists" / "data.csv", [("../cat.jpg", "cat", "train"), (coffee, "cup", ""),
                                                         (" ../cat.jpg ", " cat ", "TEST")],
                        header=("path", "label", "split"))
    found = read_labelled(listing)
    assert found.kind == "csv" and found.source == listing and found.warnings == []
    assert found.paths == [str(tmp_path / "cat.jpg"), coffee, str(tmp_path / "cat.jpg")]
    assert found.labels == ["cat", "cup", "cat"]
    assert found.splits == ["train", None, "test"]

    # Two columns, no header, written by a spreadsheet (UTF-8 with a byte-order mark, CRLF line ends).
    plain = tmp_path / "plain.csv"
    plain.write_bytes(b"\xef\xbb\xbf" + f"{cat},cat\r\n\r\n{coffee},cup\r\n".encode())
    found = read_labelled(plain)
    assert (found.paths, found.labels, found.splits) == ([cat, coffee], ["cat", "cup"], None)


# --- splitting -----------------------------------------------------------------------------------------------

def test_splits_are_stratified_seeded_and_cover_every_picture_once(digits):
    splits = make_splits(digits, val_split=0.1, test_split=0.2, seed=5)
    assert splits.class_names == [str(k) for k in range(10)]
    assert splits.skipped == [] and splits.warnings == []
    for subset, each in ((splits.train, 14), (splits.val, 2), (splits.test, 4)):
        assert subset.labels.dtype == np.int64
        assert class_counts(subset, 10).tolist() == [each] * 10
        # Each picture's label is the folder it lies in.
        assert [os.path.basename(os.path.dirname(p)) for p in subset.paths] == [str(k) for k in subset.labels]
    everything = splits.train.paths + splits.val.paths + splits.test.paths
    assert sorted(everything) == sorted(read_labelled(digits).paths)
    assert len(set(everything)) == 200

    again = make_splits(digits, val_split=0.1, test_split=0.2, seed=5)
    assert again.val.paths == splits.val.paths and again.test.paths == splits.test.paths
    other = make_splits(digits, val_split=0.1, test_split=0.2, seed=6)
    assert other.val.paths != splits.val.paths


def test_a_class_keeps_its_split_when_other_classes_come_and_go(tmp_path, digits):
    fewer = tmp_path / "fewer"
    shutil.copytree(digits, fewer)
    for digit in range(5, 10):
        shutil.rmtree(fewer / str(digit))
    all_ten, five = make_splits(digits, seed=1), make_splits(fewer, seed=1)
    # Two val and two test pictures per class, listed class by class: digits 0..4 come first in both.
    for ten, fewer_classes in ((all_ten.val, five.val), (all_ten.test, five.test)):
        assert relative(ten.paths[:10], digits) == relative(fewer_classes.paths, fewer)


def test_each_class_gets_a_picture_in_each_split_and_one_to_train(tmp_path, photos):
    few = tmp_path / "few"
    for name in ("chelsea", "rocket"):
        (few / name).mkdir(parents=True)
        for k in range(3):
            shutil.copy(os.path.join(photos, name, f"{k:03d}.jpg"), few / name / f"{k}.jpg")
    splits = make_splits(few, val_split=0.05, test_split=0.05)
    for subset in (splits.train, splits.val, splits.test):
        assert class_counts(subset, 2).tolist() == [1, 1]
    assert labelled_data.split_counts(10, [0.45, 0.45]) == [4, 5]
    assert labelled_data.split_counts(3, [0.0, 0.5]) == [0, 2]
    assert labelled_data.split_counts(2, [0.1, 0.1]) is None


def test_no_split_where_its_fraction_is_zero(photos):
    splits = make_splits(photos, val_split=0, test_split=0)
    assert splits.val is None and splits.test is None and len(splits.train.paths) == 24


def test_a_csv_split_column_wins_over_fractions(tmp_path, photos):
    rows = []
    for name in ("chelsea", "coffee"):
        for k in range(6):
            rows.append((os.path.join(photos, name, f"{k:03d}.jpg"), name, "val" if k == 0 else ""))
    listing = write_csv(tmp_path / "data.csv", rows)
    splits = make_splits(listing, val_split=0.5, test_split=0.2)
    # val is the column's two pictures; test (not in the column) is a fraction of the others; train the rest.
    assert splits.val.paths == [rows[0][0], rows[6][0]] and splits.val.labels.tolist() == [0, 1]
    assert class_counts(splits.test, 2).tolist() == [1, 1]
    assert class_counts(splits.train, 2).tolist() == [4, 4]
    assert splits.warnings == []


def test_explicit_val_and_test_data_win_over_the_split_column_and_fractions(tmp_path, photos):
    data = tmp_path / "data"
    val = tmp_path / "val"
    for name in ("chelsea", "coffee"):
        (data / name).mkdir(parents=True)
        (val / name).mkdir(parents=True)
        for k in range(5):
            shutil.copy(os.path.join(photos, name, f"{k:03d}.jpg"), data / name)
        shutil.copy(os.path.join(photos, name, "005.jpg"), val / name)
    tests = write_csv(tmp_path / "test.csv", [(os.path.join(photos, "coffee", "005.jpg"), "coffee", "train")])
    splits = make_splits(data, val=val, test=tests, val_split=0.5, test_split=0.5)
    assert len(splits.train.paths) == 10 and splits.val.labels.tolist() == [0, 1]
    # The --test CSV's own split column is not read: its one picture is the test set.
    assert splits.test.labels.tolist() == [1]
    assert splits.warnings == [f"{tests}: no test pictures of class 'chelsea': test scores leave it out"]

    # A CSV whose column marks val pictures, with --val given too: --val decides, and the user is told.
    names = [os.path.basename(os.path.dirname(p)) for p in splits.train.paths]
    column = write_csv(tmp_path / "column.csv", [(p, name, "val" if k < 2 else "")
                                                 for k, (p, name) in enumerate(zip(splits.train.paths, names))])
    again = make_splits(column, val=val, test_split=0)
    assert again.val.paths == splits.val.paths and len(again.train.paths) == 8
    assert again.warnings == [f"{column}: 2 pictures marked val in its split column ignored: --val {val} gives the "
                              "val pictures"]


def test_val_pictures_that_are_also_training_pictures_are_pointed_out(tmp_path, photos):
    shared = [os.path.join(photos, name, "000.jpg") for name in ("chelsea", "coffee")]
    val = write_csv(tmp_path / "val.csv", [(shared[0], "chelsea"), (shared[1], "coffee")])
    splits = make_splits(photos, val=val, test_split=0)
    assert splits.warnings == [f"{val}: no val pictures of classes 'astronaut', 'rocket': val scores leave them out",
                               f"2 val pictures also in the training data (first: {shared[0]}): val scores will "
                               "look better than they are"]


def test_pictures_to_score_a_model_on_are_labelled_in_the_models_order(tmp_path, photos):
    model_labels = ["rocket", "coffee", "chelsea", "astronaut", "zebra"]
    data = tmp_path / "data"
    shutil.copytree(photos, data)
    broken = write_not_an_image(str(data / "coffee" / "page.jpg"))
    told = []
    subset = labelled_data.subset_for(data, model_labels, on_warning=told.append)
    assert len(subset.paths) == 24 and broken not in subset.paths
    assert [model_labels[k] for k in subset.labels] == [os.path.basename(os.path.dirname(p)) for p in subset.paths]
    assert class_counts(subset, 5).tolist() == [6, 6, 6, 6, 0]
    assert told == [f"{data}: 1 of 25 pictures skipped as unreadable (first: {broken}: not an image file Pillow can "
                    "read: give a JPEG, PNG or BMP image)",
                    f"{data}: no evaluation pictures of class 'zebra': evaluation scores leave it out"]
    assert raised(labelled_data.subset_for, data, ["chelsea", "coffee"]) == (
        f"{data}: evaluation labels not among the model classes: 'astronaut', 'rocket' (model has chelsea, "
        "coffee): use the model's class names")


def test_class_counts_count_every_class_even_absent_ones():
    subset = Subset(["a", "b", "c"], np.array([2, 2, 0], np.int64))
    counts = class_counts(subset, 4)
    assert counts.dtype == np.int64 and counts.tolist() == [1, 0, 2, 0]


# --- checking pictures ---------------------------------------------------------------------------------------

def test_every_odd_but_readable_picture_counts_and_broken_ones_are_skipped_with_the_runtimes_reason(tmp_path):
    odd = list(odd_pictures(tmp_path / "odd").values())
    truncated = write_truncated_jpeg(str(tmp_path / "bad" / "cut.jpg"), size=96)
    text = write_not_an_image(str(tmp_path / "bad" / "page.jpg"))
    empty = tmp_path / "bad" / "empty.png"
    empty.write_bytes(b"")
    paths = [odd[0], truncated, odd[1], text, odd[2], str(empty), odd[3]]
    before = list(warnings.filters)
    scan = labelled_data.scan_readable(paths, workers=4)
    assert warnings.filters == before  # the pool's threads left the process's warning filters as they were
    assert scan.readable == odd
    assert [path for path, _ in scan.skipped] == [truncated, text, str(empty)]
    for path, reason in scan.skipped:
        with pytest.raises(EdgekitError) as caught:
            images.load_image(path)
        assert reason == str(caught.value)
    assert scan.skipped[0][1].startswith(f"{truncated}: the image is truncated or corrupt (image file is truncated")
    assert scan.skipped[1][1] == f"{text}: not an image file Pillow can read: give a JPEG, PNG or BMP image"
    assert labelled_data.scan_readable(paths, workers=1) == scan
    assert [labelled_data.unreadable_reason(p) for p in paths] == [dict(scan.skipped).get(p) for p in paths]


def test_a_jpeg_cut_off_near_its_end_is_still_caught(tmp_path):
    # The fast check decodes JPEGs at 1/8 scale; libjpeg still reads the whole stream, so the last bytes count.
    for keep in (0.5, 0.9, 0.99):
        path = write_truncated_jpeg(str(tmp_path / f"cut-{keep}.jpg"), size=256, keep=keep)
        assert labelled_data.unreadable_reason(path) is not None
        assert labelled_data._decodes_quickly(path) is False


def test_a_few_unreadable_pictures_are_skipped_and_counted(tmp_path, photos):
    data = tmp_path / "data"
    shutil.copytree(photos, data)
    cut = write_truncated_jpeg(str(data / "coffee" / "cut.jpg"))
    write_not_an_image(str(data / "rocket" / "page.jpg"))
    splits = make_splits(data, val_split=0, test_split=0)
    assert len(splits.train.paths) == 24 and len(splits.skipped) == 2
    assert splits.skipped[0][0] == cut
    assert splits.warnings == [f"{data}: 2 of 26 pictures skipped as unreadable (first: {splits.skipped[0][1]})"]


# --- one line for each mistake -------------------------------------------------------------------------------

FORMS = "give a folder with one sub-folder of pictures per class, or a CSV file of path,label lines"


def test_missing_data_and_data_that_is_neither_a_folder_nor_a_csv(tmp_path):
    missing = tmp_path / "nowhere"
    assert raised(make_splits, missing) == f"{missing}: no such training data folder or CSV file: {FORMS}"
    listing = tmp_path / "data.txt"
    listing.write_text("a.jpg,cat\n")
    assert raised(make_splits, listing) == f"{listing}: not a folder or a .csv file: {FORMS}"


def test_a_folder_without_class_folders_or_pictures(tmp_path, photos):
    empty = tmp_path / "empty"
    empty.mkdir()
    advice = (f"put each class's pictures in a sub-folder named after the class ({empty}/cat/1.jpg, "
              f"{empty}/dog/2.jpg)")
    assert raised(make_splits, empty) == f"{empty}: no class folders: {advice}"
    for k in range(3):
        shutil.copy(os.path.join(photos, "chelsea", f"{k:03d}.jpg"), empty / f"{k}.jpg")
    assert raised(make_splits, empty) == f"{empty}: no class folders (3 pictures directly in it): {advice}"

    hollow = tmp_path / "hollow"
    (hollow / "cat").mkdir(parents=True)
    (hollow / "dog").mkdir()
    (hollow / "dog" / "readme.txt").write_text("pictures to come")
    assert raised(make_splits, hollow) == (f"{hollow}: no pictures in its class folders (cat, dog): add JPEG, PNG "
                                           "or BMP pictures to each")
    shutil.copy(os.path.join(photos, "chelsea", "000.jpg"), hollow / "cat")
    assert raised(make_splits, hollow) == (f"{hollow}/dog: class 'dog' has no pictures: add pictures of it, or "
                                           "remove the folder")


def test_one_class_only(tmp_path, photos):
    data = tmp_path / "data"
    shutil.copytree(os.path.join(photos, "rocket"), data / "rocket")
    assert raised(make_splits, data) == (f"{data}: only one class ('rocket'): a classifier needs at least two "
                                         "classes: add pictures of another class (a sub-folder, or CSV lines "
                                         "with another label)")


def test_a_class_with_no_readable_picture_is_named(tmp_path, photos):
    data = tmp_path / "data"
    shutil.copytree(photos, data)
    shutil.rmtree(data / "coffee")
    broken = [write_truncated_jpeg(str(data / "coffee" / f"{k}.jpg"), seed=k) for k in range(2)]
    with pytest.raises(EdgekitError) as caught:  # the reason given is the runtime reader's own message
        images.load_image(broken[0])
    assert raised(make_splits, data) == (f"{data}: class 'coffee' has no readable picture (2 skipped, first: "
                                         f"{caught.value}): replace its pictures")


def test_most_pictures_unreadable_is_an_error(tmp_path, photos):
    data = tmp_path / "data"
    for name in ("chelsea", "coffee"):
        shutil.copytree(os.path.join(photos, name), data / name)
        for k in range(7):
            write_not_an_image(str(data / name / f"page{k}.jpg"))
    first = str(data / "chelsea" / "page0.jpg")
    assert raised(make_splits, data) == (f"{data}: 14 of its 26 pictures cannot be read (first: {first}: not an "
                                         "image file Pillow can read: give a JPEG, PNG or BMP image): check that "
                                         "these are pictures and were copied whole")


def test_too_few_pictures_to_split_names_the_class_and_how_many_are_needed(tmp_path, photos):
    data = tmp_path / "data"
    shutil.copytree(photos, data)
    for k in range(1, 6):
        os.remove(data / "coffee" / f"{k:03d}.jpg")
    shutil.copy(data / "chelsea" / "000.jpg", data / "coffee" / "extra.jpg")
    assert raised(make_splits, data, seed=0) == (
        f"{data}: class 'coffee' has 2 readable pictures, too few to split off val and test: that needs at least 3 "
        "per class (one each for train, val and test): add pictures, give --val/--test data, or set "
        "--val-split/--test-split to 0")
    os.remove(data / "coffee" / "extra.jpg")
    assert raised(make_splits, data, test_split=0) == (
        f"{data}: class 'coffee' has 1 readable picture, too few to split off val: that needs at least 2 per class "
        "(one each for train and val): add pictures, give --val data, or set --val-split to 0")
    assert len(make_splits(data, val_split=0, test_split=0).train.paths) == 19


def test_a_csv_naming_missing_files_names_the_first_and_counts_them(tmp_path, photos):
    cat = os.path.join(photos, "chelsea", "000.jpg")
    listing = write_csv(tmp_path / "data.csv", [(cat, "cat"), ("gone/a.jpg", "cat"), ("gone/b.jpg", "dog")],
                        header=("path", "label"))
    assert raised(make_splits, listing) == (
        f"{listing}: 2 of the 3 pictures it lists do not exist (first: line 3, {tmp_path}/gone/a.jpg): paths are "
        "relative to the CSV file's folder, or absolute")


def test_a_csv_line_with_an_empty_label_a_bad_split_or_the_wrong_columns(tmp_path, photos):
    cat = os.path.join(photos, "chelsea", "000.jpg")
    listing = tmp_path / "data.csv"
    listing.write_text(f"path,label\n{cat},cat\n\n{cat},\n")
    assert raised(make_splits, listing) == (f"{listing}: line 4: empty label: give every picture a class name "
                                            "(path,label)")
    listing.write_text(f"{cat},cat,train\n{cat},cat,validation\n")
    assert raised(make_splits, listing) == (f"{listing}: line 2: split 'validation' is not train, val or test: "
                                            "fix it or leave the third column empty")
    listing.write_text(f"{cat},cat,train,extra\n")
    assert raised(make_splits, listing) == f"{listing}: line 1: 4 columns: write path,label or path,label,split"
    listing.write_text(f"{cat},cat,val\n{cat},dog,test\n")
    assert raised(make_splits, listing) == (f"{listing}: every picture is marked val or test in its split column: "
                                            "mark some train, or leave their split empty")
    listing.write_text("path,label\n")
    assert raised(make_splits, listing) == f"{listing}: no pictures listed: write one path,label line per picture"
    listing.write_bytes(b"\xff\xfe" + "a.jpg,cat\n".encode("utf-16-le"))
    assert raised(make_splits, listing) == f"{listing}: not UTF-8 text: save the CSV file as UTF-8"


def test_val_or_test_labels_the_training_data_lacks(tmp_path, photos):
    data = tmp_path / "data"
    for name in ("chelsea", "coffee"):
        shutil.copytree(os.path.join(photos, name), data / name)
    test = write_csv(tmp_path / "test.csv", [(os.path.join(photos, "rocket", "000.jpg"), "rocket"),
                                            (os.path.join(photos, "chelsea", "000.jpg"), "chelsea"),
                                            (os.path.join(photos, "astronaut", "000.jpg"), "astronaut")])
    assert raised(make_splits, data, test=test) == (
        f"{test}: test labels not among the training classes: 'astronaut', 'rocket' (training has chelsea, "
        "coffee): use the training data's class names")

    # In a CSV's own split column too.
    rows = [(os.path.join(photos, name, f"{k:03d}.jpg"), name) for name in ("chelsea", "coffee") for k in range(3)]
    listing = write_csv(tmp_path / "data.csv", rows + [(os.path.join(photos, "rocket", "000.jpg"), "rocket", "val")])
    assert raised(make_splits, listing, test_split=0) == (
        f"{listing} (val split): val labels not among the training classes: 'rocket' (training has chelsea, "
        "coffee): use the training data's class names")


def test_bad_fractions_and_seeds(photos):
    assert raised(make_splits, photos, val_split=1.0) == "--val-split must be at least 0 and below 1, not 1"
    assert raised(make_splits, photos, test_split=-0.1) == "--test-split must be at least 0 and below 1, not -0.1"
    assert raised(make_splits, photos, val_split=0.6, test_split=0.4) == (
        "--val-split 0.6 and --test-split 0.4 leave nothing to train on: make their sum less than 1")
    assert raised(make_splits, photos, val_split="a tenth") == (
        "--val-split must be a number at least 0 and below 1, not 'a tenth'")
    assert raised(make_splits, photos, seed=-1) == "--seed must be a whole number of at least 0, not -1"

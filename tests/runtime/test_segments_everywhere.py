"""A model cut into segments runs wherever a model is taken: `edgekit run`, `edgekit eval` and the camera take
the folder `edgekit segment` wrote, or the segment files in order, and give the whole model's results bit for
bit (Coral's mobilenet_v2 classes and score vectors on its pictures, deeplabv3's masks), pipelined over the
segments for a stream of pictures. Bad sets fail in one line.

The segments are cut on the CPU by `edgekit.compiler.partition.segment_model` (`edgekit segment`), balanced by
parameter bytes as edgetpu_compiler --num_segments splits; no Edge TPU is needed.
"""

import json
import os
import shutil
import threading

import numpy as np
import pytest

from cli_runner import edgekit
from edgekit.errors import EdgekitError
from edgekit.evaluation import evaluate
from edgekit.runtime import inference
from edgekit.runtime.camera import CameraSession
from edgekit.runtime.interpreter import names_segments, open_model
from edgekit.runtime.pipeline import PoppedOutputs, Runner, pipelined_runner, pipelines
from testdata import coral_file

MOBILENET = "mobilenet_v2_1.0_224_quant"
DEEPLAB = "deeplabv3_mnv2_dm05_pascal_quant"
PICTURES = ("cat.bmp", "grace_hopper.bmp", "parrot.jpg")
# Each picture's top class: its id in imagenet_labels.txt, and its name there (class folders are named so).
CLASS_OF = {"cat.bmp": (286, "Egyptian cat"), "grace_hopper.bmp": (653, "military uniform"),
            "parrot.jpg": (89, "macaw")}


def _segmented(tmp_path_factory, name, count):
    from edgekit.compiler.partition import segment_model

    folder = tmp_path_factory.mktemp(f"{name}_segments")
    written = segment_model(coral_file(name + ".tflite"), count, folder)
    return str(coral_file(name + ".tflite")), str(folder), [str(f) for f in written.files]


@pytest.fixture(scope="module")
def mobilenet(tmp_path_factory):
    """(whole model, folder of its 2 segments, the segment files)."""
    return _segmented(tmp_path_factory, MOBILENET, 2)


@pytest.fixture(scope="module")
def deeplab(tmp_path_factory):
    """(whole model, folder of its 3 segments, the segment files)."""
    return _segmented(tmp_path_factory, DEEPLAB, 3)


def _pictures():
    return [str(coral_file(name)) for name in PICTURES]


def _run_json(*args):
    result = edgekit("run", *args, "--device", "cpu", "--json")
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


def _one_line_error(result, expected):
    assert result.exit_code != 0
    assert result.stderr == f"edgekit: error: {expected}\n"


def test_run_takes_the_folder_or_the_files_and_gives_the_whole_models_classes(mobilenet):
    whole, folder, files = mobilenet
    pictures = _pictures()
    expected = _run_json(whole, *pictures, "--top-k", "5")
    for model in ([folder], files):
        document = _run_json(*model, *pictures, "--top-k", "5")
        assert document["segments"] == 2 and document["ran"] == files and document["device"] == "cpu,cpu"
        assert document["model"] == ", ".join(model)
        assert [r["image"] for r in document["results"]] == pictures
        assert [r["classes"] for r in document["results"]] == [r["classes"] for r in expected["results"]]
    assert [r["classes"][0]["id"] for r in expected["results"]] == [CLASS_OF[name][0] for name in PICTURES]
    text = edgekit("run", folder, pictures[0], "--device", "cpu").stdout
    assert text.splitlines()[0].startswith(f"{folder} (2 segments) on cpu,cpu (")


def test_score_vectors_are_bit_identical_pipelined_and_chained(mobilenet):
    whole, folder, _ = mobilenet
    pictures = _pictures()
    expected = [r.scores for r in inference.run_images(whole, pictures, device="cpu").results]
    # Several pictures go through PipelinedModelRunner, one picture through the chain.
    pipelined = [r.scores for r in inference.run_images(folder, pictures, device="cpu").results]
    chained = [inference.run_images(folder, [p], device="cpu").results[0].scores for p in pictures]
    for want, got, alone in zip(expected, pipelined, chained):
        assert want.dtype == got.dtype and np.array_equal(want, got) and np.array_equal(want, alone)


def test_a_stream_is_pipelined_only_for_a_model_in_segments(mobilenet):
    whole, folder, _ = mobilenet
    opened = open_model(folder, device="cpu")
    assert pipelines(opened, 2) and not pipelines(opened, 1)
    assert not pipelines(open_model(whole, device="cpu"), 2)
    pipe = pipelined_runner(opened)
    try:
        assert pipe.interpreters() == opened.segments.interpreters
    finally:
        pipe.close()


def test_popped_outputs_read_like_the_chain(mobilenet):
    _, folder, _ = mobilenet
    opened = open_model(folder, device="cpu")
    details = opened.interpreter.get_output_details()
    scores = np.arange(1001, dtype=np.uint8).reshape(1, 1001)
    view = PoppedOutputs(opened.interpreter, {details[0]["name"]: scores})
    assert view.get_output_details() == details and view.get_input_details() == opened.interpreter.get_input_details()
    assert view.tensor(details[0]["index"])() is scores and view.get_tensor(details[0]["index"]) is scores


def test_deeplab_masks_are_the_whole_models(deeplab):
    whole, folder, files = deeplab
    bird = str(coral_file("bird_segmentation.bmp"))
    pictures = [bird, str(coral_file("cat.bmp"))]
    expected = inference.run_images(whole, pictures, device="cpu").results
    for model in (folder, files):
        report = inference.run_images(model, pictures, device="cpu")
        assert report.model.segments == 3 and report.model.ran == files
        for want, got in zip(expected, report.results):
            assert got.task == "segmentation" and np.array_equal(want.mask, got.mask)
    truth = np.asarray(__import__("PIL.Image", fromlist=["Image"]).open(coral_file("bird_segmentation_mask.bmp")))
    assert np.mean((expected[0].mask == 3) == (truth == 3)) > 0.9   # the bird is there, at 513 x 513
    assert _run_json(folder, bird)["results"][0]["mask"] == _run_json(whole, bird)["results"][0]["mask"]


def _class_folders(root):
    for name, (_, label) in CLASS_OF.items():
        (root / label).mkdir(parents=True)
        shutil.copy(coral_file(name), root / label / name)
    return root


def test_eval_scores_the_segments_as_the_whole_model(mobilenet, tmp_path):
    whole, folder, files = mobilenet
    data = _class_folders(tmp_path / "data")
    result = edgekit("eval", whole, *files, folder, "--data", data, "--labels", coral_file("imagenet_labels.txt"),
                     "--reference", whole, "--device", "cpu", "--no-progress", "--json")
    assert result.exit_code == 0, result.output
    document = json.loads(result.stdout)
    rows = document["models"]
    assert [r["model"] for r in rows] == [whole, ", ".join(files), folder]
    assert [r["ran"] for r in rows] == [whole, files, files] and rows[1]["device"] == "cpu,cpu"
    for row in rows:
        assert (row["top1"], row["top5"], row["agreement"], row["mean_kl"]) == (1.0, 1.0, 1.0, 0.0)
        assert row["per_class"] == rows[0]["per_class"]


def test_eval_over_two_workers_and_the_segmentation_figures(deeplab, tmp_path):
    whole, folder, files = deeplab
    for sub, name in (("images", "bird_segmentation.bmp"), ("masks", "bird_segmentation_mask.bmp")):
        (tmp_path / "data" / sub).mkdir(parents=True)
        for copy in ("bird", "bird_again"):
            os.symlink(coral_file(name), tmp_path / "data" / sub / f"{copy}.bmp")
    report = evaluate.evaluate([whole, folder], tmp_path / "data", device="cpu", workers=2, threads=1,
                               labels_path=coral_file("pascal_voc_segmentation_labels.txt"), progress=False)
    expected, found = report.models
    assert found.workers == 2 and found.ran == files
    assert (found.miou, found.pixel_accuracy, found.mask_iou, found.per_class) == (
        expected.miou, expected.pixel_accuracy, expected.mask_iou, expected.per_class)


def test_eval_groups_segment_files_into_models():
    groups = evaluate.model_groups(["a.tflite", "s/m_segment_0_of_2.tflite", "s/m_segment_1_of_2.tflite",
                                    "s/m_segment_0_of_2_edgetpu.tflite", "s/m_segment_1_of_2_edgetpu.tflite",
                                    "t/m_segment_0_of_2.tflite", "folder", ("x.tflite", "y.tflite")])
    assert groups == ["a.tflite", ("s/m_segment_0_of_2.tflite", "s/m_segment_1_of_2.tflite"),
                      ("s/m_segment_0_of_2_edgetpu.tflite", "s/m_segment_1_of_2_edgetpu.tflite"),
                      ("t/m_segment_0_of_2.tflite",), "folder", ("x.tflite", "y.tflite")]


def _camera_lines(model, frames):
    result = edgekit("camera", *model, "--source", frames, "--device", "cpu", "--top-k", "3", "--json")
    assert result.exit_code == 0, result.output
    lines = [json.loads(line) for line in result.stdout.splitlines()]
    return [(line["frame"], line["classes"]) for line in lines]


def test_camera_over_an_image_folder_gives_the_whole_models_classes(mobilenet, tmp_path):
    whole, folder, files = mobilenet
    frames = tmp_path / "frames"
    frames.mkdir()
    for name in PICTURES:
        shutil.copy(coral_file(name), frames / name)
    expected = _camera_lines([whole], frames)
    assert [classes[0]["id"] for _, classes in expected] == [CLASS_OF[name][0] for name in sorted(PICTURES)]
    assert _camera_lines([folder], frames) == expected
    assert _camera_lines(files, frames) == expected
    found = []
    before = threading.active_count()
    session = CameraSession(files, str(frames), device="cpu", top_k=3,
                            on_frame=lambda frame, result, fps: found.append(result.classes))
    with pytest.raises(EdgekitError, match="a model in segments runs pipelined and cannot be replaced mid-run"):
        session.replace_model(open_model(whole, device="cpu"))
    summary = session.run()
    assert summary.model.segments == 2 and summary.model.device == "cpu,cpu" and summary.frames == 3
    assert [[c.id for c in classes] for classes in found] == [[c["id"] for c in e] for _, e in expected]
    # Stopped after two frames of a looping source: the pipeline, its feeder and the capture end.
    summary = CameraSession(folder, str(frames), device="cpu", loop=True, max_frames=2).run()
    assert (summary.frames, summary.ended) == (2, "max frames")
    assert threading.active_count() == before


def test_a_bad_picture_in_a_pipelined_stream_raises_in_its_turn(mobilenet, tmp_path):
    _, folder, _ = mobilenet
    broken = tmp_path / "broken.jpg"
    broken.write_bytes(b"not a picture")
    pictures = _pictures()
    runner = Runner(open_model(folder, device="cpu"))
    before = threading.active_count()
    stream = runner.run_images([pictures[0], pictures[1], str(broken), pictures[2]])
    assert [r.classes[0].id for r in (next(stream), next(stream))] == [286, 653]
    with pytest.raises(EdgekitError, match=f"^{broken}: not an image file Pillow can read"):
        next(stream)
    assert threading.active_count() == before      # the feeder and the segments' threads have ended
    # A consumer that stops early leaves no thread behind either.
    stream = runner.run_images(pictures)
    next(stream)
    stream.close()
    assert threading.active_count() == before


def test_one_line_for_a_bad_set(mobilenet, tmp_path):
    whole, folder, files = mobilenet
    cat = str(coral_file("cat.bmp"))
    _one_line_error(edgekit("run", files[0], cat), f"the segments given: segment 1 of 2 "
                    f"({os.path.basename(files[1])}) is missing: give all 2 segments of the model")
    _one_line_error(edgekit("run", *files), f"no images after the model ({', '.join(files)}): give the images to "
                    "run, after the model's .tflite file(s), as in `edgekit run MODEL.tflite IMAGE...`")
    _one_line_error(edgekit("eval", files[1], "--data", tmp_path), f"the segments given: segment 0 of 2 "
                    f"({os.path.basename(files[0])}) is missing: give all 2 segments of the model")
    _one_line_error(edgekit("camera", folder, "--teach", "--serve", "127.0.0.1:0"),
                    f"{folder}: --teach rewrites one model file's imprinting head; give that model, not segments")
    _one_line_error(edgekit("run", whole, files[1], cat), f"{whole} is not a segment of a model: its name is not "
                    "<model>_segment_K_of_N[_edgetpu].tflite and its metadata names no segment; give the segment "
                    "files `edgekit segment` or `edgekit compile --segments` wrote")


def test_what_names_a_model_in_segments(mobilenet, tmp_path):
    whole, folder, files = mobilenet
    assert names_segments(folder) and names_segments(files) and names_segments([files[0]])
    assert not names_segments(whole) and not names_segments([whole]) and not names_segments(files[0])

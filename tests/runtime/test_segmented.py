"""A model cut into segments: finding and ordering the files, refusing sets that are not one model's, device
lists, opening compiled segments without an Edge TPU (their CPU twins), the chain through `Runner` giving the
whole model's results on Coral's pictures, and `edgekit bench` on segments.

Segments are cut from Coral's models with `edgekit.tflite.segments.split_model`; deeplabv3's compiled twin,
cut after its edgetpu-custom-op, gives a real compiled segment 0 (all of the Edge TPU part) and a segment 1 of
CPU ops, as `edgetpu_compiler --num_segments` leaves post-processing to the last segment.
"""

import hashlib
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from cli_runner import edgekit
from edgekit.errors import DeviceError, EdgekitError
from edgekit.runtime import edgetpu
from edgekit.runtime.edgetpu import EdgeTpu, segment_devices
from edgekit.runtime.interpreter import open_model
from edgekit.runtime.pipeline import Runner
from edgekit.runtime.pipelining import PipelinedModelRunner, PipelineSetupError
from edgekit.runtime.segmented import (SEGMENT_FILE, ChainedInterpreter, chained_model, find_segments, is_segment_set,
                                       open_segments)
from edgekit.tflite.builder import colour_classifier
from edgekit.tflite.metadata import embed_metadata
from edgekit.tflite.segments import split_model

MOBILENET = "mobilenet_v2_1.0_224_quant.tflite"
DEEPLAB = "deeplabv3_mnv2_dm05_pascal_quant"
# deeplabv3's compiled twin is [edgetpu-custom-op, then 8 CPU ops]; its CPU model ends in the same 8 ops.
DEEPLAB_CPU_OPS = 8
ROOT = Path(__file__).resolve().parents[2]


def _write_set(folder, stem, parts, whole=None, suffix=".tflite", names=None):
    """Write `parts` (model bytes) as segment files of `stem`; with `whole` (the whole model's bytes), each
    carries edgekit's "segment" metadata. Returns the paths."""
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for k, part in enumerate(parts):
        if whole is not None:
            part = embed_metadata(part, {"segment": {"index": k, "count": len(parts), "name": f"{stem}.tflite",
                                                     "model": hashlib.sha256(whole).hexdigest()}})
        name = names[k] if names else f"{stem}_segment_{k}_of_{len(parts)}{suffix}"
        path = folder / name
        path.write_bytes(part)
        paths.append(str(path))
    return paths


@pytest.fixture(scope="module")
def mobilenet_segments(tmp_path_factory):
    """Coral's mobilenet_v2 cut in two, with edgekit's segment metadata: (folder, paths, whole model path)."""
    from testdata import coral_file

    whole = coral_file(MOBILENET)
    folder = tmp_path_factory.mktemp("mobilenet") / "segments"
    data = whole.read_bytes()
    return folder, _write_set(folder, "mobilenet_v2_1.0_224_quant", split_model(data, [30]), data), whole


@pytest.fixture(scope="module")
def deeplab_compiled_set(tmp_path_factory):
    """deeplabv3's compiled segments (segment 0 holds the edgetpu-custom-op) and their CPU twins, as a folder."""
    from testdata import coral_file

    compiled = coral_file(DEEPLAB + "_edgetpu.tflite").read_bytes()
    cpu = coral_file(DEEPLAB + ".tflite").read_bytes()
    folder = tmp_path_factory.mktemp("deeplab") / "segments"
    cpu_parts = split_model(cpu, [len(_op_count_model(cpu)) - DEEPLAB_CPU_OPS])
    _write_set(folder, DEEPLAB, cpu_parts)
    return folder, _write_set(folder, DEEPLAB, split_model(compiled, [1]), suffix="_edgetpu.tflite")


def _op_count_model(data):
    from edgekit.tflite.graph_edit import GraphEditor

    return GraphEditor.from_bytes(data).op_names()


@pytest.fixture
def tiny(tmp_path):
    """Writes named copies of one small real model: what finding and ordering segments look at is names and
    metadata, not what the files compute."""
    model = colour_classifier(8)

    def write(*names, metadata=None, folder=tmp_path):
        folder.mkdir(parents=True, exist_ok=True)
        paths = []
        for name in names:
            data = embed_metadata(model, metadata(name)) if metadata else model
            (folder / name).write_bytes(data)
            paths.append(str(folder / name))
        return paths

    return write


def _error(call):
    with pytest.raises(EdgekitError) as error:
        call()
    return str(error.value)


def test_segment_file_names():
    match = SEGMENT_FILE.match("efficientdet_lite3_segment_1_of_2_edgetpu.tflite")
    assert (match["stem"], match["index"], match["count"], match["edgetpu"]) == ("efficientdet_lite3", "1", "2",
                                                                                  "_edgetpu")
    match = SEGMENT_FILE.match("a_segment_b_segment_0_of_3.tflite")
    assert (match["stem"], match["index"], match["count"], match["edgetpu"]) == ("a_segment_b", "0", "3", None)
    assert SEGMENT_FILE.match("model_edgetpu.tflite") is None
    assert SEGMENT_FILE.match("m_segment_0_of_2.tflite.bak") is None


def test_segments_are_found_in_index_order(tmp_path, tiny):
    names = [f"m_segment_{k}_of_11.tflite" for k in range(11)]
    tiny(*reversed(names), folder=tmp_path / "set")
    assert find_segments(tmp_path / "set") == [str(tmp_path / "set" / name) for name in names]
    assert find_segments(str(tmp_path / "set")) == find_segments([tmp_path / "set"])
    given = [str(tmp_path / "set" / name) for name in (names[3], names[10], names[0], *names[4:10], names[1],
                                                        names[2])]
    assert find_segments(given) == [str(tmp_path / "set" / name) for name in names]


def test_metadata_decides_the_order_of_renamed_segments(tmp_path, tiny):
    paths = tiny("first.tflite", "second.tflite", "third.tflite",
                 metadata=lambda name: {"segment": {"index": ["second.tflite", "third.tflite",
                                                              "first.tflite"].index(name), "count": 3,
                                                    "model": "ab" * 32, "name": "m.tflite"}})
    assert find_segments(paths) == [paths[1], paths[2], paths[0]]


def test_a_folder_with_compiled_segments_and_their_twins_gives_the_compiled_set(tmp_path, tiny):
    tiny("m_segment_0_of_2.tflite", "m_segment_1_of_2.tflite", "m_segment_0_of_2_edgetpu.tflite",
         "m_segment_1_of_2_edgetpu.tflite", "m.tflite", "notes.txt")
    assert find_segments(tmp_path) == [str(tmp_path / "m_segment_0_of_2_edgetpu.tflite"),
                                       str(tmp_path / "m_segment_1_of_2_edgetpu.tflite")]


def test_is_segment_set(tmp_path, tiny):
    tiny("m_segment_0_of_2.tflite", "m_segment_1_of_2.tflite", folder=tmp_path / "set")
    one = tiny("m.tflite", "m_segment_0_of_1.tflite", folder=tmp_path / "models")
    assert is_segment_set(tmp_path / "set") and is_segment_set([str(tmp_path / "set")])
    assert is_segment_set(one)  # more than one model file
    assert not is_segment_set(one[0]) and not is_segment_set([one[1]])
    assert is_segment_set(str(tmp_path / "set" / "m_segment_1_of_2.tflite"))  # alone it cannot run
    (tmp_path / "pictures").mkdir()
    assert not is_segment_set(tmp_path / "pictures")


def test_a_missing_segment_is_one_line(tmp_path, tiny):
    tiny("m_segment_0_of_3.tflite", "m_segment_2_of_3.tflite", folder=tmp_path / "a")
    assert _error(lambda: find_segments(tmp_path / "a")) == (
        f"{tmp_path / 'a'}: segment 1 of 3 (m_segment_1_of_3.tflite) is missing: give all 3 segments of the model")
    paths = tiny("m_segment_3_of_4_edgetpu.tflite", "m_segment_0_of_4_edgetpu.tflite", folder=tmp_path / "b")
    assert _error(lambda: find_segments(paths)) == (
        "the segments given: segments 1, 2 of 4 (m_segment_1_of_4_edgetpu.tflite, m_segment_2_of_4_edgetpu.tflite) "
        "are missing: give all 4 segments of the model")


def test_segments_of_different_models_are_one_line(tmp_path, tiny):
    paths = tiny("m_segment_0_of_2.tflite", "m_segment_1_of_2.tflite", folder=tmp_path / "hash",
                 metadata=lambda name: {"segment": {"index": int(name[10]), "count": 2,
                                                    "model": ("ab" if "0_of" in name else "cd") * 32,
                                                    "name": "lite2.tflite" if "0_of" in name else "lite3.tflite"}})
    assert _error(lambda: find_segments(paths)) == (
        f"{paths[0]} and {paths[1]} are not segments of one model (their metadata names different whole models, "
        "lite2.tflite and lite3.tflite): give the segments of one model only, all cut the same way")
    paths = tiny("lite2_segment_0_of_2_edgetpu.tflite", "lite3_segment_1_of_2_edgetpu.tflite", folder=tmp_path / "stem")
    assert _error(lambda: find_segments(paths)) == (
        f"{paths[0]} and {paths[1]} are not segments of one model (their names say different models, lite2 and "
        "lite3): give the segments of one model only, all cut the same way")
    paths = tiny("m_segment_0_of_2.tflite", "m_segment_1_of_3.tflite", folder=tmp_path / "count")
    assert _error(lambda: find_segments(paths)) == (
        f"{paths[0]} and {paths[1]} are not segments of one model (one is cut into 2, the other into 3): give the "
        "segments of one model only, all cut the same way")
    # Two cuts of one model in one folder are two sets too.
    tiny("m_segment_0_of_2.tflite", "m_segment_1_of_2.tflite", "m_segment_0_of_3.tflite", folder=tmp_path / "two")
    assert "(one is cut into 2, the other into 3)" in _error(lambda: find_segments(tmp_path / "two"))


def test_other_bad_sets_are_one_line_each(tmp_path, tiny):
    model = tiny("m_segment_0_of_2.tflite", "copy.tflite", "plain.tflite", folder=tmp_path / "files",
                 metadata=lambda name: ({"segment": {"index": 0, "count": 2, "name": "m.tflite"}}
                                        if name == "copy.tflite" else {}))
    assert _error(lambda: find_segments(model[:2])) == (
        f"{model[0]} and {model[1]} are both segment 0 of 2: give each segment once")
    assert _error(lambda: find_segments([model[0], model[2]])) == (
        f"{model[2]} is not a segment of a model: its name is not <model>_segment_K_of_N[_edgetpu].tflite and its "
        "metadata names no segment; give the segment files `edgekit segment` or `edgekit compile --segments` wrote")
    odd = tiny("m_segment_0_of_2.tflite", folder=tmp_path / "odd",
               metadata=lambda name: {"segment": {"index": 5, "count": 2}})
    assert _error(lambda: find_segments(odd)) == (
        f"{odd[0]} says it is segment 5 of 2, which cannot be: segments count from 0; cut the model again with "
        "`edgekit segment`")
    (tmp_path / "empty").mkdir()
    assert _error(lambda: find_segments(tmp_path / "empty")) == (
        f"{tmp_path / 'empty'}: no segment files (<model>_segment_K_of_N[_edgetpu].tflite) in this folder: cut a "
        f"model into it with `edgekit segment MODEL --segments N --out {tmp_path / 'empty'}`")
    assert _error(lambda: find_segments([str(tmp_path / "files"), model[0]])) == (
        f"{tmp_path / 'files'} is a folder and {model[0]} a file: give one folder of segments, or the segment "
        "files, not both")
    assert _error(lambda: find_segments([str(tmp_path / "files"), str(tmp_path / "odd")])) == (
        f"{tmp_path / 'files'} is a folder and {tmp_path / 'odd'} another folder: give one folder of segments, or "
        "the segment files, not both")
    assert _error(lambda: find_segments(tmp_path / "nowhere")) == f"{tmp_path / 'nowhere'}: no such file or folder"
    assert _error(lambda: find_segments([])) == (
        "no segments given: give the folder `edgekit segment` or `edgekit compile --segments` wrote, or the "
        "segment files")


USB2 = [EdgeTpu("usb", "/sys/bus/usb/devices/2-1"), EdgeTpu("usb", "/sys/bus/usb/devices/2-2")]
PCI_AND_USB = [EdgeTpu("usb", "/sys/bus/usb/devices/2-1"), EdgeTpu("pci", "/dev/apex_0")]


@pytest.mark.parametrize("text, compiled, found, expected", [
    ("usb:0,usb:1", [True, True], [], ["usb:0", "usb:1"]),
    ("pci:0, pci:1", [True, True], [], ["pci:0", "pci:1"]),
    ("usb:1,cpu", [True, False], [], ["usb:1", "cpu"]),
    ("usb:0,usb:1,usb:2", [True, True], [], ["usb:0", "usb:1"]),
    ("auto", [True, True], USB2, ["usb:0", "usb:1"]),
    ("auto", [True, True], PCI_AND_USB, ["pci:0", "usb:0"]),  # PCIe first, as pycoral's pipeline tests pick
    ("auto", [True, False], USB2, ["usb:0", "cpu"]),
    ("auto", [True, True], [], ["auto", "auto"]),  # no Edge TPU: each falls back to its CPU twin
    (None, [False, False], USB2, ["cpu", "cpu"]),
    ("cpu", [True, True], USB2, ["cpu", "cpu"]),
    ("usb", [True, True], USB2, ["usb:0", "usb:1"]),
    ("edgetpu", [True, True, True], USB2 + [EdgeTpu("pci", "/dev/apex_0")], ["pci:0", "usb:0", "usb:1"]),
    ("usb:1", [True, False], USB2, ["usb:1", "cpu"]),  # the last segment holds only CPU ops
    ("auto", [True, False, True], [], ["auto", "cpu", "auto"]),
    ("pci", [False, True, True], PCI_AND_USB + [EdgeTpu("pci", "/dev/apex_1")], ["cpu", "pci:0", "pci:1"]),
    ("usb:0", [False, False], USB2, ["usb:0", "usb:0"]),  # open_model then says they are not compiled
])
def test_devices_for_segments(text, compiled, found, expected):
    assert segment_devices(text, compiled, found) == expected


@pytest.mark.parametrize("text, compiled, found, kind, message", [
    ("usb:0,usb:1", [True] * 3, USB2, EdgekitError,
     "3 segments but 2 devices are given (usb:0,usb:1): each segment runs on its own Edge TPU; list one device per "
     "segment, as in --device usb:0,usb:1,usb:2"),
    ("usb:0", [True, True], USB2, EdgekitError,
     "2 segments but one device is given (usb:0): each segment runs on its own Edge TPU; list one device per "
     "segment, as in --device usb:0,usb:1"),
    ("auto", [True] * 3, USB2, DeviceError,
     "3 segments but 2 Edge TPUs found (usb:0, usb:1): each segment runs on its own Edge TPU; attach 3 Edge TPUs, "
     "or use --device cpu to run the segments' CPU twins"),
    ("pci", [True, True], PCI_AND_USB, DeviceError,
     "2 segments but 1 pci Edge TPU found (pci:0, usb:0): each segment runs on its own Edge TPU; attach 2 Edge "
     "TPUs, or use --device cpu to run the segments' CPU twins"),
    ("usb:0", [True, True, False], USB2, EdgekitError,
     "3 segments, 2 of them compiled for the Edge TPU, but one device is given (usb:0): each segment runs on its "
     "own Edge TPU; list one device per segment, as in --device usb:0,usb:1,cpu"),
    ("usb:0,usb:0", [True, True], USB2, EdgekitError,
     "device list 'usb:0,usb:0' names usb:0 twice: each segment needs its own Edge TPU, as in usb:0,usb:1"),
    ("usb,usb:1", [True, True], USB2, EdgekitError,
     "device list 'usb,usb:1': 'usb' is not one device; list one per segment, each usb:N, pci:N or cpu, as in "
     "usb:0,usb:1"),
    ("usb:0,,usb:1", [True, True], USB2, EdgekitError,
     "device list 'usb:0,,usb:1': '' is not one device; list one per segment, each usb:N, pci:N or cpu, as in "
     "usb:0,usb:1"),
    ("usb:0,gpu:1", [True, True], USB2, EdgekitError,
     "unknown device 'gpu:1': use cpu, auto, edgetpu, usb, usb:N, pci, pci:N or :N"),
])
def test_bad_device_lists_are_one_line(text, compiled, found, kind, message):
    with pytest.raises(kind) as error:
        segment_devices(text, compiled, found)
    assert str(error.value) == message


def test_the_chain_runs_through_runner_like_the_whole_model(mobilenet_segments, coral):
    folder, paths, whole = mobilenet_segments
    opened = open_segments(folder, device="cpu")
    assert opened.paths == paths and opened.devices == ["cpu", "cpu"]
    assert opened.model_name == "mobilenet_v2_1.0_224_quant.tflite"
    runner = Runner(chained_model(opened, requested=str(folder)))
    result = runner.run_image(coral("cat.bmp"))
    expected = Runner(open_model(str(whole), device="cpu")).run_image(coral("cat.bmp"))
    assert result.classes == expected.classes
    # Coral's expectation for this model and picture: Egyptian cat (286) in the top 3, score >= 0.7.
    assert any(c.id == 286 and c.score >= 0.7 for c in result.classes[:3])
    info = runner.info
    assert (info.path, info.ran, info.device, info.task) == (str(folder), paths, "cpu,cpu", "classification")
    assert [round(ms, 3) > 0 for ms in runner.interpreter.last_invoke_ms] == [True, True]


def test_the_chain_and_the_pipeline_agree_with_the_whole_model_bit_for_bit(mobilenet_segments):
    _, paths, whole = mobilenet_segments
    opened = open_segments(paths, device="cpu", num_threads=1)
    chain = ChainedInterpreter(opened)
    reference = open_model(str(whole), device="cpu", num_threads=1).interpreter
    pictures = np.random.default_rng(5).integers(0, 256, (4, 1, 224, 224, 3), dtype=np.uint8)
    wanted = []
    for picture in pictures:
        reference.set_tensor(reference.get_input_details()[0]["index"], picture)
        reference.invoke()
        wanted.append(reference.get_tensor(reference.get_output_details()[0]["index"]))
        chain.set_tensor(chain.get_input_details()[0]["index"], picture)
        chain.invoke()
        assert np.array_equal(chain.get_tensor(chain.get_output_details()[0]["index"]), wanted[-1])
    runner = PipelinedModelRunner(opened.interpreters)
    name = chain.get_input_details()[0]["name"]
    for picture in pictures:
        runner.push({name: picture})
    runner.push({})
    output = chain.get_output_details()[0]["name"]
    for want in wanted:
        assert np.array_equal(runner.pop()[output], want)
    assert runner.pop() is None


def test_segments_in_the_wrong_order_name_their_files(mobilenet_segments):
    _, paths, _ = mobilenet_segments
    opened = open_segments(paths, device="cpu", num_threads=1)
    swapped = opened._replace(segments=opened.segments[::-1])
    with pytest.raises(PipelineSetupError) as error:
        ChainedInterpreter(swapped)
    assert str(error.value).startswith(f"{paths[1]}, {paths[0]}: Interpreter 1 can not get its input tensors: it "
                                       "reads 'input'")


def test_compiled_segments_without_an_edge_tpu_run_their_cpu_twins(deeplab_compiled_set, coral, no_edgetpu_library):
    folder, compiled = deeplab_compiled_set
    notices = []
    opened = open_segments(folder, device="auto", notice=notices.append)
    twin = str(folder / f"{DEEPLAB}_segment_0_of_2.tflite")
    assert opened.paths == compiled and opened.devices == ["cpu", "cpu"]
    assert [s.path for s in opened.segments] == [twin, compiled[1]]  # segment 1 holds only CPU ops
    library = edgetpu.delegate_library()
    assert notices == [f"{compiled[0]} needs an Edge TPU (the runtime library {library} is not installed); running "
                       f"its CPU twin {twin} instead"]
    mask = Runner(chained_model(opened)).run_image(coral("bird_segmentation.bmp")).mask
    whole = Runner(open_model(str(coral(DEEPLAB + ".tflite")), device="cpu")).run_image(coral("bird_segmentation.bmp"))
    assert np.array_equal(mask, whole.mask)


def test_a_compiled_segment_without_its_twin_is_one_line(tmp_path, deeplab_compiled_set, no_edgetpu_library):
    _, compiled = deeplab_compiled_set
    lonely = tmp_path / f"{DEEPLAB}_segment_0_of_2_edgetpu.tflite"
    lonely.write_bytes(open(compiled[0], "rb").read())
    (tmp_path / f"{DEEPLAB}_segment_1_of_2_edgetpu.tflite").write_bytes(open(compiled[1], "rb").read())
    message = _error(lambda: open_segments(tmp_path, notice=lambda m: None))
    library = edgetpu.delegate_library()
    twin = tmp_path / (DEEPLAB + "_segment_0_of_2.tflite")
    assert message == (f"{lonely} is compiled for the Edge TPU and cannot run on the CPU (the runtime library "
                       f"{library} is not installed), and its CPU twin {twin} is missing: put the uncompiled model "
                       "there, or attach an Edge TPU")


def test_more_segments_than_devices_is_one_line_before_any_device_is_opened(tmp_path, deeplab_compiled_set):
    _, compiled = deeplab_compiled_set
    for k in range(3):  # what the files compute is never reached: the device list is refused first
        (tmp_path / f"m_segment_{k}_of_3_edgetpu.tflite").write_bytes(open(compiled[0], "rb").read())
    assert _error(lambda: open_segments(tmp_path, device="usb:0,usb:1")) == (
        "3 segments but 2 devices are given (usb:0,usb:1): each segment runs on its own Edge TPU; list one device "
        "per segment, as in --device usb:0,usb:1,usb:2")


def test_a_device_that_cannot_be_used_names_the_segment(deeplab_compiled_set, no_edgetpu_library):
    folder, compiled = deeplab_compiled_set
    library = edgetpu.delegate_library()
    with pytest.raises(DeviceError) as error:
        open_segments(folder, device="usb:0")  # segment 1 holds only CPU ops: one device is enough
    assert str(error.value) == (
        f"segment 0 of 2 on usb:0: cannot run {compiled[0]} on the Edge TPU: the runtime library {library} is not "
        "installed; install libedgetpu1-std (see 'Edge TPU setup' in edgekit's README) or run on the CPU with "
        "--device cpu")


def test_bench_on_segments(mobilenet_segments):
    folder, paths, _ = mobilenet_segments
    result = edgekit("bench", folder, "--device", "cpu", "-n", 4, "--warmup", 1, "--json")
    assert result.exit_code == 0, result.stderr
    document = json.loads(result.stdout)
    assert (document["model"], document["device"], document["threads"]) == (str(folder), "cpu,cpu",
                                                                             max(1, (os.cpu_count() or 1) // 2))
    per_segment = document["per_segment"]
    assert [s["path"] for s in per_segment] == paths and [s["device"] for s in per_segment] == ["cpu", "cpu"]
    assert document["ran"] == paths and document["segments"] == 2
    for stats in [document["invoke"], document["pipeline"]] + [s["invoke"] for s in per_segment]:
        assert stats["n"] == 4 and 0 < stats["min_ms"] <= stats["p50_ms"] <= stats["max_ms"]
    # The chain's invoke holds both segments' invokes.
    assert document["invoke"]["p50_ms"] >= max(s["invoke"]["min_ms"] for s in per_segment)
    stream = document["stream"]
    assert stream["inputs"] == 4 and stream["fps"] > 0 and stream["chain_fps"] == document["invoke"]["fps"]
    assert stream["speedup"] == round(stream["fps"] / stream["chain_fps"], 3)
    text = edgekit("bench", *paths, "--device", "cpu", "-n", 2, "--warmup", 0, "--threads", 1)
    assert text.exit_code == 0, text.stderr
    assert "1 thread per segment" in text.stdout and "segment 1" in text.stdout
    assert "pipelined, a stream of 2 inputs:" in text.stdout


def test_bench_refuses_a_bad_set_in_one_line(tmp_path, mobilenet_segments):
    _, paths, _ = mobilenet_segments
    result = edgekit("bench", paths[1], "--device", "cpu")
    assert result.exit_code == 1
    assert result.stderr == ("edgekit: error: the segments given: segment 0 of 2 (mobilenet_v2_1.0_224_quant_segment_"
                             "0_of_2.tflite) is missing: give all 2 segments of the model\n")


@pytest.mark.edgetpu
def test_a_device_taken_by_another_process_is_one_line(deeplab_compiled_set, coral):
    """With an Edge TPU on usb:0 held by another process, opening a segment there says so and names the segment."""
    folder, compiled = deeplab_compiled_set
    holder = subprocess.Popen(
        [sys.executable, "-c", "import sys, time\nfrom edgekit.runtime.interpreter import open_model\n"
                               "open_model(sys.argv[1], device='usb:0')\nprint('held', flush=True)\ntime.sleep(60)\n",
         str(coral("mobilenet_v1_0.25_128_quant_edgetpu.tflite"))], stdout=subprocess.PIPE, text=True, cwd=ROOT)
    try:
        assert holder.stdout.readline().strip() == "held"
        with pytest.raises(DeviceError) as error:
            open_segments(folder, device="usb:0,cpu")
        message = str(error.value)
        assert message.startswith(f"segment 0 of 2 on usb:0: cannot run {compiled[0]} on the Edge TPU: the Edge TPU")
        assert "probably because another process is using it" in message and "\n" not in message
    finally:
        holder.kill()
        holder.wait()


@pytest.mark.edgetpu
def test_compiled_segments_on_edge_tpus_give_the_cpu_results(deeplab_compiled_set, coral):
    folder, compiled = deeplab_compiled_set
    opened = open_segments(folder, device="auto")
    assert opened.devices[0] != "cpu" and opened.devices[1] == "cpu"  # segment 1 holds only CPU ops
    mask = Runner(chained_model(opened)).run_image(coral("bird_segmentation.bmp")).mask
    whole = Runner(open_model(str(coral(DEEPLAB + "_edgetpu.tflite")))).run_image(coral("bird_segmentation.bmp"))
    assert np.array_equal(mask, whole.mask)

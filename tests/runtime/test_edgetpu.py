"""Device strings, hardware discovery and the delegate diagnosis, against a real stand-in libedgetpu.

No Edge TPU is attached here, so the stand-in (tests/runtime/standin/libedgetpu_standin.c, compiled by
the fixture) plays the installed runtime; the paths for a real device are the `edgetpu`-marked tests.
"""

import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest

from edgekit.errors import DeviceError, EdgekitError
from edgekit.runtime import edgetpu
from edgekit.runtime.interpreter import open_model

STANDIN_SOURCE = Path(__file__).parent / "standin" / "libedgetpu_standin.c"


@pytest.fixture
def standin(tmp_path, monkeypatch):
    """standin(runtime=14, devices=1): build the stand-in library and make edgekit load it."""

    def build(runtime=14, devices=1):
        compiler = shutil.which("cc") or shutil.which("gcc")
        if compiler is None:
            pytest.fail("a C compiler is needed to build the stand-in libedgetpu")
        library = tmp_path / f"libedgetpu-r{runtime}-d{devices}.so.1"
        subprocess.run([compiler, "-shared", "-fPIC", f"-DRUNTIME_VERSION={runtime}",
                        f"-DDEVICE_COUNT={devices}", "-o", str(library), str(STANDIN_SOURCE)], check=True)
        monkeypatch.setenv("EDGEKIT_EDGETPU_LIBRARY", str(library))
        return library

    return build


@pytest.mark.parametrize("text, expected", [
    ("cpu", ("cpu", None)), ("auto", ("auto", None)), (None, ("auto", None)), ("edgetpu", ("edgetpu", None)),
    ("usb", ("edgetpu", "usb")), ("usb:1", ("edgetpu", "usb:1")), ("pci", ("edgetpu", "pci")),
    ("pci:0", ("edgetpu", "pci:0")), (":0", ("edgetpu", ":0")), ("USB:2", ("edgetpu", "usb:2")),
])
def test_device_strings(text, expected):
    assert tuple(edgetpu.parse_device(text)) == expected


@pytest.mark.parametrize("text", ["gpu", "usb:", "usb:x", "pci:-1", "tpu0", ":", "usb:0:1"])
def test_unknown_device_string(text):
    with pytest.raises(EdgekitError) as error:
        edgetpu.parse_device(text)
    assert str(error.value) == f"unknown device '{text}': use cpu, auto, edgetpu, usb, usb:N, pci, pci:N or :N"


def test_delegate_library_by_os(monkeypatch):
    monkeypatch.delenv("EDGEKIT_EDGETPU_LIBRARY", raising=False)
    for system, name in [("Linux", "libedgetpu.so.1"), ("Darwin", "libedgetpu.1.dylib"),
                         ("Windows", "edgetpu.dll")]:
        monkeypatch.setattr(edgetpu.platform, "system", lambda s=system: s)
        assert edgetpu.delegate_library() == name


def test_hardware_seen_without_runtime(tmp_path):
    sysfs, dev = tmp_path / "usb", tmp_path / "dev"
    for folder, ids in {"1-1": ("1a6e", "089a"), "1-2": ("18d1", "9302"), "1-3": ("046d", "c52b")}.items():
        (sysfs / folder).mkdir(parents=True)
        (sysfs / folder / "idVendor").write_text(ids[0] + "\n")
        (sysfs / folder / "idProduct").write_text(ids[1] + "\n")
    dev.mkdir()
    (dev / "apex_0").write_text("")
    found = edgetpu.visible_hardware(str(sysfs), str(dev))
    assert [(d.type, Path(d.path).name) for d in found] == [("pci", "apex_0"), ("usb", "1-1"), ("usb", "1-2")]


def test_missing_library_is_named(no_edgetpu_library, coral):
    twin = coral("mobilenet_v1_0.25_128_quant_edgetpu.tflite")
    with pytest.raises(DeviceError) as error:
        open_model(twin, device="edgetpu")
    assert str(error.value) == (
        f"cannot run {twin} on the Edge TPU: the runtime library {edgetpu.delegate_library()} is not "
        "installed; install libedgetpu1-std (see 'Edge TPU setup' in edgekit's README) or run on the CPU "
        "with --device cpu")


def test_library_without_device(standin, coral):
    library = standin(runtime=14, devices=0)
    assert edgetpu.list_edge_tpus() == []
    with pytest.raises(DeviceError) as error:
        open_model(coral("mobilenet_v1_0.25_128_quant_edgetpu.tflite"), device="usb")
    assert f"{library} is installed but no Edge TPU is visible; plug in the USB Accelerator" in str(error.value)


def test_device_present_but_unusable_means_busy(standin, coral):
    standin(runtime=14, devices=1)
    assert edgetpu.list_edge_tpus() == [edgetpu.EdgeTpu("usb", "/sys/bus/usb/devices/2-1")]
    assert edgetpu.runtime_version()[0] == 14
    with pytest.raises(DeviceError) as error:
        open_model(coral("mobilenet_v1_0.25_128_quant_edgetpu.tflite"), device="usb:0")
    message = str(error.value)
    assert "the Edge TPU (usb:0) could not be opened, probably because another process is using it" in message
    assert "one Edge TPU serves one process at a time" in message


def test_no_device_matches_request(standin, coral):
    standin(runtime=14, devices=2)
    with pytest.raises(DeviceError) as error:
        open_model(coral("mobilenet_v1_0.25_128_quant_edgetpu.tflite"), device="pci:0")
    assert "no Edge TPU matches 'pci:0' (found usb:0, usb:1); pick one of those with --device" in str(error.value)


def test_runtime_too_old_for_model(standin, coral):
    standin(runtime=11, devices=1)
    twin = coral("tools/split_concat_edgetpu.tflite")  # compiled for runtime 13
    with pytest.raises(DeviceError) as error:
        open_model(twin, device="edgetpu")
    assert str(error.value) == (
        f"{twin}: compiled for Edge TPU runtime 13, but libedgetpu here is runtime 11: update libedgetpu "
        "(see 'Edge TPU setup' in edgekit's README) or recompile with `edgekit compile --min-runtime 11`")


@pytest.mark.parametrize("name", ["mobilenet_v1_0.25_128_quant", "mobilenet_v1_0.5_160_quant",
                                  "mobilenet_v2_1.0_224_quant", "keras_lstm_mnist_ptq",
                                  "tools/split_concat", "deeplabv3_mnv2_dm05_pascal_quant"])
def test_auto_falls_back_to_cpu_twin_with_identical_outputs(no_edgetpu_library, coral, name):
    notices = []
    twin = open_model(coral(name + "_edgetpu.tflite"), device="auto", num_threads=1, notice=notices.append)
    cpu = open_model(coral(name + ".tflite"), device="cpu", num_threads=1)
    assert Path(twin.path) == coral(name + ".tflite") and twin.device == "cpu"
    assert len(notices) == 1 and "running its CPU twin" in notices[0]
    rng = np.random.default_rng(0)
    for a, b in zip(twin.interpreter.get_input_details(), cpu.interpreter.get_input_details()):
        data = rng.integers(0, 256, a["shape"]).astype(a["dtype"])
        twin.interpreter.set_tensor(a["index"], data)
        cpu.interpreter.set_tensor(b["index"], data)
    twin.interpreter.invoke()
    cpu.interpreter.invoke()
    for a, b in zip(twin.interpreter.get_output_details(), cpu.interpreter.get_output_details()):
        np.testing.assert_array_equal(twin.interpreter.get_tensor(a["index"]),
                                      cpu.interpreter.get_tensor(b["index"]))


def test_missing_twin_is_named(no_edgetpu_library, coral, tmp_path):
    lonely = tmp_path / "mobilenet_v1_0.25_128_quant_edgetpu.tflite"
    shutil.copyfile(coral("mobilenet_v1_0.25_128_quant_edgetpu.tflite"), lonely)
    with pytest.raises(EdgekitError) as error:
        open_model(lonely, device="cpu")
    assert str(error.value) == (
        f"{lonely} is compiled for the Edge TPU and cannot run on the CPU (--device cpu was asked for), and its "
        f"CPU twin {tmp_path / 'mobilenet_v1_0.25_128_quant.tflite'} is missing: put the uncompiled model "
        "there, or attach an Edge TPU")


def test_uncompiled_model_refused_on_edgetpu(coral):
    model = coral("mobilenet_v1_0.25_128_quant.tflite")
    with pytest.raises(EdgekitError) as error:
        open_model(model, device="edgetpu")
    assert str(error.value) == (f"{model}: not compiled for the Edge TPU (no edgetpu-custom-op): run "
                                f"`edgekit compile {model}` first, or use --device cpu")


@pytest.mark.edgetpu
@pytest.mark.parametrize("name", ["mobilenet_v1_0.25_128_quant", "mobilenet_v2_1.0_224_quant"])
def test_compiled_model_on_real_edgetpu(coral, name):
    opened = open_model(coral(name + "_edgetpu.tflite"), device="edgetpu")
    assert opened.device == "edgetpu"
    opened.interpreter.invoke()

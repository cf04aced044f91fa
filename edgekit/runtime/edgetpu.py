"""The Edge TPU: device strings, finding libedgetpu and devices, loading the delegate, and saying why not.

libedgetpu's C API (edgetpu_c.h) is read with ctypes when the library is there, so listing devices and
the runtime version need neither pycoral nor TensorFlow. Without the library we still look for the
hardware (USB ids, /dev/apex_*) so the diagnosis can say which half is missing.
"""

import ctypes
import glob
import os
import platform
import re
from collections import namedtuple

from edgekit.errors import DeviceError, EdgekitError

# The delegate library by OS, as Coral's packages install it.
DELEGATE_LIBRARIES = {"Linux": "libedgetpu.so.1", "Darwin": "libedgetpu.1.dylib", "Windows": "edgetpu.dll"}
# USB ids: 1a6e:089a before its firmware is loaded (Global Unichip), 18d1:9302 after (Google).
USB_IDS = {("1a6e", "089a"), ("18d1", "9302")}
# Every device string parse_device takes, as users see them in --help and in errors.
DEVICES = "cpu, auto, edgetpu, usb, usb:N, pci, pci:N or :N"
DEVICE_HELP = f"use {DEVICES}"
SETUP_HINT = "see 'Edge TPU setup' in edgekit's README"

EdgeTpu = namedtuple("EdgeTpu", "type path")
Device = namedtuple("Device", "kind option")  # kind: cpu | auto | edgetpu; option: libedgetpu's "device"

_DEVICE_PATTERN = re.compile(r"^(usb|pci)?(:(\d+))?$")


def parse_device(text):
    """'usb:0' -> Device('edgetpu', 'usb:0'); 'cpu' / 'auto' -> Device(kind, None)."""
    value = (text or "auto").strip().lower()
    if value in ("cpu", "auto"):
        return Device(value, None)
    if value in ("edgetpu", "tpu"):
        return Device("edgetpu", None)
    match = _DEVICE_PATTERN.match(value)
    if not match or not value:
        raise EdgekitError(f"unknown device '{text}': {DEVICE_HELP}")
    return Device("edgetpu", value)


def parse_device_list(text):
    """'usb:0,usb:1' -> [Device('edgetpu', 'usb:0'), Device('edgetpu', 'usb:1')]; a single device -> [Device].

    In a list every Edge TPU needs its number (which one runs which segment must be clear), a device may
    appear once (one Edge TPU serves one interpreter well: it caches one model's parameters), and `cpu` may
    stand for a segment that runs on the CPU."""
    entries = [entry.strip() for entry in (text or "auto").split(",")]
    if len(entries) == 1:
        return [parse_device(entries[0])]
    devices = []
    for entry in entries:
        device = parse_device(entry) if entry else None
        if device is None or device.kind == "auto" or (device.kind == "edgetpu" and ":" not in (device.option or "")):
            raise EdgekitError(f"device list '{text}': '{entry}' is not one device; list one per segment, each "
                               "usb:N, pci:N or cpu, as in usb:0,usb:1")
        if device.kind == "edgetpu" and device in devices:
            raise EdgekitError(f"device list '{text}' names {device.option} twice: each segment needs its own "
                               "Edge TPU, as in usb:0,usb:1")
        devices.append(device)
    return devices


def _numbered(devices):
    """'pci:0', 'pci:1', 'usb:0', ... for `list_edge_tpus()`'s devices, PCIe first as pycoral's pipeline tests
    pick them (a PCIe Edge TPU is the faster link); the number counts devices of that type."""
    names = []
    for kind in ("pci", "usb"):
        names += [f"{kind}:{i}" for i in range(sum(1 for d in devices if d.type == kind))]
    return names


def segment_devices(text, compiled, found):
    """The device string each segment opens with (for `interpreter.open_model`), from --device `text`, whether
    each segment is compiled for the Edge TPU (`compiled`, a list of bools in segment order) and the Edge TPUs
    `found` (`list_edge_tpus()`).

    A list: its devices in segment order. cpu: every segment on the CPU. Otherwise each compiled segment gets
    an Edge TPU of its own and the others the CPU: auto takes the Edge TPUs found, or "auto" for each compiled
    segment when none is (each then runs its CPU twin, as `open_model` does for one model); usb, pci or edgetpu
    alone take the first ones of that kind; one numbered device serves one compiled segment. Too few devices:
    EdgekitError (DeviceError when too few are attached), one line."""
    count = len(compiled)
    devices = parse_device_list(text)
    if len(devices) > 1:
        if len(devices) < count:
            raise EdgekitError(_too_few(compiled, f"{len(devices)} devices are given ({text})", "list"))
        return [d.option or d.kind for d in devices[:count]]
    device = devices[0]
    if device.kind == "cpu":
        return ["cpu"] * count
    if device.kind == "edgetpu" and not any(compiled):
        # Asked for an Edge TPU, none of them compiled: open_model says so, and what to do, on the first.
        return [device.option or "edgetpu"] * count
    wanted = sum(compiled)
    if device.kind == "auto" and not found:
        return ["auto" if flag else "cpu" for flag in compiled]
    if device.option is not None and ":" in device.option:
        if wanted > 1:
            raise EdgekitError(_too_few(compiled, f"one device is given ({text})", "list"))
        return [device.option if flag else "cpu" for flag in compiled]
    kind = device.option or ""
    names = [name for name in _numbered(found) if name.startswith(kind)]
    if len(names) < wanted:
        shown = ", ".join(_numbered(found)) or "none"
        raise DeviceError(_too_few(compiled, f"{len(names)} {kind + ' ' if kind else ''}Edge TPU"
                                             f"{'' if len(names) == 1 else 's'} found ({shown})", "attach"))
    picked = iter(names)
    return [next(picked) if flag else "cpu" for flag in compiled]


def _too_few(compiled, have, fix):
    count, wanted = len(compiled), sum(compiled)
    who = (f"{count} segments" if wanted in (0, count) else
           f"{count} segments, {wanted} of them compiled for the Edge TPU,")
    numbers = iter(range(count))
    example = ",".join(f"usb:{next(numbers)}" if flag or not wanted else "cpu" for flag in compiled)
    advice = (f"list one device per segment, as in --device {example}" if fix == "list" else
              f"attach {wanted} Edge TPUs, or use --device cpu to run the segments' CPU twins")
    return f"{who} but {have}: each segment runs on its own Edge TPU; {advice}"


def delegate_library():
    return os.environ.get("EDGEKIT_EDGETPU_LIBRARY") or DELEGATE_LIBRARIES.get(platform.system(),
                                                                              "libedgetpu.so.1")


class _Device(ctypes.Structure):
    _fields_ = [("type", ctypes.c_int), ("path", ctypes.c_char_p)]


def _open_library():
    try:
        return ctypes.CDLL(delegate_library())
    except OSError:
        return None


def library_available():
    return _open_library() is not None


def runtime_version():
    """(version number, full string) from libedgetpu's edgetpu_version(), or (None, None)."""
    lib = _open_library()
    if lib is None or not hasattr(lib, "edgetpu_version"):
        return None, None
    lib.edgetpu_version.restype = ctypes.c_char_p
    text = (lib.edgetpu_version() or b"").decode("utf-8", "replace")
    match = re.search(r"RuntimeVersion\((\d+)\)", text)
    return (int(match.group(1)) if match else None), text


def list_edge_tpus():
    """Edge TPUs the runtime can see (its own list when libedgetpu is installed, else the hardware)."""
    lib = _open_library()
    if lib is not None and hasattr(lib, "edgetpu_list_devices"):
        count = ctypes.c_size_t(0)
        lib.edgetpu_list_devices.restype = ctypes.POINTER(_Device)
        devices = lib.edgetpu_list_devices(ctypes.byref(count))
        found = [EdgeTpu("pci" if devices[i].type == 0 else "usb", (devices[i].path or b"").decode())
                 for i in range(count.value)]
        if devices:
            lib.edgetpu_free_devices(devices)
        return found
    return visible_hardware()


def visible_hardware(sysfs="/sys/bus/usb/devices", dev="/dev"):
    """Edge TPUs present on the buses, whether or not a runtime is installed (Linux only)."""
    found = [EdgeTpu("pci", path) for path in sorted(glob.glob(os.path.join(dev, "apex_*")))]
    for folder in sorted(glob.glob(os.path.join(sysfs, "*"))):
        ids = tuple(_read(os.path.join(folder, name)) for name in ("idVendor", "idProduct"))
        if ids in USB_IDS:
            found.append(EdgeTpu("usb", folder))
    return found


def _read(path):
    try:
        with open(path) as f:
            return f.read().strip().lower()
    except OSError:
        return ""


def check_runtime_version(model_path, needed):
    """Refuse early, with the fix, when the model needs a newer runtime than the installed libedgetpu."""
    have, _ = runtime_version()
    if needed and have is not None and have < needed:
        raise DeviceError(f"{model_path}: compiled for Edge TPU runtime {needed}, but libedgetpu here is "
                          f"runtime {have}: update libedgetpu ({SETUP_HINT}) or recompile with "
                          f"`edgekit compile --min-runtime {have}`")


def load_delegate(backend, device_option, model_path):
    """The Edge TPU delegate for `device_option`, or a DeviceError that says what is wrong and the fix."""
    if not library_available():
        # Checked first: a failed load_delegate also prints a stray "Exception ignored" line from LiteRT.
        raise _device_error(device_option, model_path)
    devices = list_edge_tpus()
    if not devices or (device_option and not _matches(device_option, devices)):
        raise _device_error(device_option, model_path)
    options = {"device": device_option} if device_option else {}
    try:
        return backend.load_delegate(delegate_library(), options)
    # Runtimes disagree on what a failed load raises: OSError (LiteRT, missing library), ValueError
    # (tflite-runtime), AttributeError (a library that is not a delegate), RuntimeError (tf.lite).
    except (OSError, ValueError, AttributeError, RuntimeError) as e:
        raise _device_error(device_option, model_path, str(e)) from e


def _device_error(device_option, model_path, detail=""):
    problem, fix = diagnose(device_option, detail)
    error = DeviceError(f"cannot run {model_path} on the Edge TPU: {problem}; {fix}")
    error.problem = problem
    return error


def diagnose(device_option, detail=""):
    """Why the delegate would not load: (what is wrong, what to do), each a short phrase."""
    library = delegate_library()
    if not library_available():
        return (f"the runtime library {library} is not installed",
                f"install libedgetpu1-std ({SETUP_HINT}) or run on the CPU with --device cpu")
    devices = list_edge_tpus()
    if not devices:
        return (f"{library} is installed but no Edge TPU is visible",
                "plug in the USB Accelerator (lsusb shows 1a6e:089a or 18d1:9302) or install the PCIe "
                f"driver (/dev/apex_0), check the udev rules ({SETUP_HINT}), or use --device cpu")
    found = ", ".join(f"{d.type}:{i}" for i, d in enumerate(devices))
    if device_option and not _matches(device_option, devices):
        return f"no Edge TPU matches '{device_option}' (found {found})", "pick one of those with --device"
    return (f"the Edge TPU ({found}) could not be opened, probably because another process is using it "
            f"({' '.join(detail.split()) or 'delegate load failed'})",
            "one Edge TPU serves one process at a time: stop the other process or pick another device "
            "with --device")


def _matches(option, devices):
    kind, _, index = option.partition(":")
    candidates = [d for d in devices if not kind or d.type == kind]
    return len(candidates) > int(index or 0)

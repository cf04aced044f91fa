"""`edgekit doctor` as a library function: what this machine has for running models, and what to do next."""

import platform
import sys
from collections import namedtuple

from edgekit.errors import EdgekitError
from edgekit.runtime import edgetpu
from edgekit.runtime.backends import select_backend

Diagnosis = namedtuple("Diagnosis", "python platform backend tensorflow_loaded libedgetpu edge_tpus hardware_seen "
                                    "next")
"""python: its version; platform: "system machine"; backend: "name version" of the interpreter backend, or
"none (why)"; tensorflow_loaded: whether TensorFlow got imported (only tf.lite, the backend of last resort, imports it);
libedgetpu: a `LibEdgeTpu`; edge_tpus and hardware_seen: edgetpu.EdgeTpu tuples of the devices the
delegate lists and of the hardware visible on USB / PCIe; next: the next steps, in order."""

LibEdgeTpu = namedtuple("LibEdgeTpu", "library found runtime_version version_string")
"""The Edge TPU runtime: the delegate library's name, whether it loads, its runtime version (a number
or None) and its own version string."""


def next_steps(backend, has_library, library, devices):
    """What to do next, for whichever part is missing (or the command to run when nothing is)."""
    steps = []
    if backend is None:
        steps.append("pip install ai-edge-litert")
    if not has_library:
        steps.append(f"install the Edge TPU runtime ({library}): sudo apt-get install libedgetpu1-std "
                     "(see 'Edge TPU setup' in the README); until then models run on the CPU")
    elif not devices:
        steps.append("no Edge TPU visible: plug in the USB Accelerator or install the PCIe driver "
                     "(gasket-dkms), and check the udev rules")
    if not steps:
        steps.append("ready: edgekit run MODEL_edgetpu.tflite IMAGE --device edgetpu")
    return steps


def diagnose():
    """Facts about this machine's runtime, and the next step for whichever part is missing: a `Diagnosis`."""
    try:
        backend = select_backend()
        backend_text = backend.text
    except EdgekitError as e:
        backend, backend_text = None, f"none ({e})"
    library = edgetpu.delegate_library()
    has_library = edgetpu.library_available()
    version, version_text = edgetpu.runtime_version()
    devices = edgetpu.list_edge_tpus()
    hardware = edgetpu.visible_hardware()
    return Diagnosis(platform.python_version(), f"{platform.system()} {platform.machine()}", backend_text,
                     "tensorflow" in sys.modules, LibEdgeTpu(library, has_library, version, version_text),
                     list(devices), list(hardware), next_steps(backend, has_library, library, devices))

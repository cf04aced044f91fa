"""`edgekit doctor` as a library function: what this machine has for running models, and what to do next."""

import platform
import sys

from edgekit.errors import EdgekitError
from edgekit.runtime import edgetpu
from edgekit.runtime.backends import select_backend


def diagnose():
    """Facts about this machine's runtime, and the next step for whichever part is missing."""
    try:
        backend = select_backend()
        backend_text = f"{backend.name} {backend.version}"
    except EdgekitError as e:
        backend, backend_text = None, f"none ({e})"
    library = edgetpu.delegate_library()
    has_library = edgetpu.library_available()
    version, version_text = edgetpu.runtime_version()
    devices = edgetpu.list_edge_tpus()
    hardware = edgetpu.visible_hardware()
    next_steps = []
    if backend is None:
        next_steps.append("pip install ai-edge-litert")
    if not has_library:
        next_steps.append(f"install the Edge TPU runtime ({library}): sudo apt-get install libedgetpu1-std "
                          "(see 'Edge TPU setup' in the README); until then models run on the CPU")
    elif not devices:
        next_steps.append("no Edge TPU visible: plug in the USB Accelerator or install the PCIe driver "
                          "(gasket-dkms), and check the udev rules")
    if not next_steps:
        next_steps.append("ready: edgekit run MODEL_edgetpu.tflite IMAGE --device edgetpu")
    return {"python": platform.python_version(), "platform": f"{platform.system()} {platform.machine()}",
            "backend": backend_text, "tensorflow_loaded": "tensorflow" in sys.modules,
            "libedgetpu": {"library": library, "found": has_library, "runtime_version": version,
                           "version_string": version_text},
            "edge_tpus": [d._asdict() for d in devices],
            "hardware_seen": [d._asdict() for d in hardware],
            "next": next_steps}

"""Write edgekit's metadata document into a .tflite (the format edgekit.tflite.metadata reads).

Plain TFLite interpreters ignore metadata entries they do not know, so the model stays a normal model.
A compiled twin gets a sidecar `<stem>.edgekit.json` as well, in case the compiler drops the entry.
"""

import json

import numpy as np

from edgekit import __version__
from edgekit.files import write_atomic
from edgekit.tflite.metadata import METADATA_NAME, sidecar_path

FIELDS = ("task", "labels", "input_size", "mean", "std", "resize", "cpu_model", "source", "calibration",
          "edgekit_version")


def document(task, input_size, mean, std, resize, labels=None, source=None, calibration=None, cpu_model=None):
    """The metadata dict, with only known fields and JSON-ready values."""
    values = {"task": task, "labels": list(labels) if labels else None,
              "input_size": [int(input_size[0]), int(input_size[1])], "mean": float(mean), "std": float(std),
              "resize": resize, "cpu_model": cpu_model, "source": source, "calibration": calibration,
              "edgekit_version": __version__}
    return {k: values[k] for k in FIELDS if values[k] is not None}


def embed(model_bytes, metadata):
    """Model bytes with `metadata` stored as the entry "edgekit" (replacing an older one)."""
    from ai_edge_litert import schema_py_generated as schema_fb

    from edgekit.converters.quantize import pack

    model = schema_fb.ModelT.InitFromPackedBuf(bytes(model_bytes), 0)
    raw = json.dumps(metadata, separators=(",", ":"), sort_keys=True).encode("utf-8")
    buffer = schema_fb.BufferT()
    buffer.data = np.frombuffer(raw, np.uint8)
    model.buffers = list(model.buffers or []) + [buffer]
    entry = schema_fb.MetadataT()
    entry.name = METADATA_NAME
    entry.buffer = len(model.buffers) - 1
    model.metadata = [m for m in (model.metadata or []) if _name(m) != METADATA_NAME] + [entry]
    return pack(model)


def _name(entry):
    name = entry.name
    return name.decode("utf-8") if isinstance(name, bytes) else name


def write_sidecar(model_path, metadata):
    return write_atomic(sidecar_path(model_path), json.dumps(metadata, indent=2, sort_keys=True))

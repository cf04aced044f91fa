"""edgekit's own model metadata, read and written here: what `edgekit run` needs to know so that no flag is
required.

The converter stores one JSON document in the .tflite metadata entry "edgekit" (plain interpreters
ignore metadata). Where a compiler drops it, a sidecar `<model stem>.edgekit.json` beside the file
serves instead. Fields, all optional:
  task            "classification" | "detection" | "segmentation" | "embedding" (an extractor for
                  `edgekit learn`: pooled features out, no classes)
  labels          list of class names, index = class id
  input_size      [width, height]
  mean, std       normalisation of raw pixels: x = (pixel - mean) / std
  resize          a resize method name of edgekit.runtime.images.RESIZE_METHODS
  cpu_model       file name of the CPU twin, relative to the model's folder
  segment         in each segment of a model cut for pipelining: {"index": K, "count": N, "model": sha256 hex
                  of the whole model's bytes, "name": the whole model's file name}
  source, calibration, edgekit_version   provenance, for people
"""

import json
import os

import numpy as np

from edgekit import __version__
from edgekit.files import write_atomic

METADATA_NAME = "edgekit"
SIDECAR_SUFFIX = ".edgekit.json"
FIELDS = ("task", "labels", "input_size", "mean", "std", "resize", "detection", "cpu_model", "source", "calibration",
          "edgekit_version", "segment")


def sidecar_path(model_path):
    stem, _ = os.path.splitext(os.fspath(model_path))
    return stem + SIDECAR_SUFFIX


def _parse(raw):
    try:
        document = json.loads(raw.decode("utf-8") if isinstance(raw, (bytes, bytearray)) else raw)
    except (ValueError, UnicodeDecodeError):
        return {}
    return document if isinstance(document, dict) else {}


def read_edgekit_metadata(model):
    """The metadata document of a `Model` (embedded first, then the sidecar), or {} when it has none."""
    raw = model.metadata.get(METADATA_NAME)
    if raw:
        return _parse(raw)
    try:
        with open(sidecar_path(model.path), "rb") as f:
            return _parse(f.read())
    except OSError:
        return {}


def metadata_document(task, input_size, mean, std, resize, labels=None, source=None, calibration=None,
                      cpu_model=None, detection=None):
    """The metadata dict, with only known fields and JSON-ready values (this edgekit's version recorded).
    detection: the post-processing op's settings of a detector (max_detections, score_threshold,
    iou_threshold), as a dict."""
    values = {"task": task, "labels": list(labels) if labels else None,
              "detection": {k: (int(v) if k == "max_detections" else float(v)) for k, v in detection.items()}
              if detection else None,
              "input_size": [int(input_size[0]), int(input_size[1])], "mean": float(mean), "std": float(std),
              "resize": resize, "cpu_model": cpu_model, "source": source, "calibration": calibration,
              "edgekit_version": __version__}
    return {k: values[k] for k in FIELDS if values.get(k) is not None}


def retasked(metadata, task, labels=None):
    """`metadata` for a model made from this one that does another `task` on the same input (an extractor cut
    from a classifier, a classifier head on an extractor): the input's size and normalisation kept, the old
    task and labels replaced (labels left out when None)."""
    kept = {k: v for k, v in metadata.items() if k not in ("task", "labels")}
    return {**kept, "task": task, **({"labels": list(labels)} if labels is not None else {})}


def embed_metadata(model_bytes, metadata):
    """Model bytes with `metadata` stored as the entry "edgekit" (replacing an older one). Plain TFLite
    interpreters ignore metadata entries they do not know, so the model stays a normal model."""
    from edgekit.tflite.graph_edit import pack, unpack

    model = unpack(model_bytes)
    store_metadata(model, metadata)
    return pack(model)


def store_metadata(model, metadata):
    """Store `metadata` as the entry "edgekit" of a LiteRT `ModelT` being edited (its old entry replaced)."""
    from edgekit.tflite.graph_edit import litert_schema

    schema = litert_schema()
    raw = json.dumps(metadata, separators=(",", ":"), sort_keys=True).encode("utf-8")
    buffer = schema.BufferT()
    buffer.data = np.frombuffer(raw, np.uint8)
    old = [m for m in (model.metadata or []) if _entry_name(m) == METADATA_NAME]
    if old and old[0].buffer > 0:
        # The old entry's buffer is reused, so that a model edited again and again does not grow.
        model.buffers[old[0].buffer] = buffer
        return
    model.buffers = list(model.buffers or []) + [buffer]
    entry = schema.MetadataT()
    entry.name = METADATA_NAME
    entry.buffer = len(model.buffers) - 1
    model.metadata = [m for m in (model.metadata or []) if _entry_name(m) != METADATA_NAME] + [entry]


def stored_metadata(model):
    """The "edgekit" metadata document of a LiteRT `ModelT`, or {} when it has none."""
    for entry in model.metadata or []:
        if _entry_name(entry) == METADATA_NAME and entry.buffer > 0:
            data = model.buffers[entry.buffer].data
            return _parse(bytes(np.asarray(data, np.uint8))) if data is not None else {}
    return {}


def _entry_name(entry):
    name = entry.name
    return name.decode("utf-8") if isinstance(name, bytes) else name


def write_sidecar(model_path, metadata):
    """Write `metadata` beside a compiled model, in case the compiler dropped the embedded entry."""
    return write_atomic(sidecar_path(model_path), json.dumps(metadata, indent=2, sort_keys=True))

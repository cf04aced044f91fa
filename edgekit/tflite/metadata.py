"""edgekit's own model metadata: what `edgekit run` needs to know so that no flag is required.

The converter stores one JSON document in the .tflite metadata entry "edgekit" (plain interpreters
ignore metadata). Where a compiler drops it, a sidecar `<model stem>.edgekit.json` beside the file
serves instead. Fields, all optional:
  task            "classification" | "detection" | "segmentation"
  labels          list of class names, index = class id
  input_size      [width, height]
  mean, std       normalisation of raw pixels: x = (pixel - mean) / std
  resize          a resize method name of edgekit.runtime.images.RESIZE_METHODS
  cpu_model       file name of the CPU twin, relative to the model's folder
  source, calibration, edgekit_version   provenance, for people
"""

import json
import os

METADATA_NAME = "edgekit"
SIDECAR_SUFFIX = ".edgekit.json"


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

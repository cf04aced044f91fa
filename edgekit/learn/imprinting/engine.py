"""Weight imprinting (Qi, Brown & Lowe, arXiv:1712.07136) on a converted or compiled model, with pycoral's API.

    from edgekit.learn.imprinting.engine import ImprintingEngine   # was: from pycoral.learn.imprinting.engine ...

    engine = ImprintingEngine("efficientnet-lite0_imprinting.tflite", keep_classes=False)
    extractor = make_interpreter(engine.serialize_extractor_model())
    ...  # for each picture of class k: run the extractor, then
    engine.train(embedding, class_id=k)
    open("new.tflite", "wb").write(engine.serialize_model())

A class's weights are the normalized mean of its normalized embeddings, written into the model's last 1x1
convolution (see `edgekit.tflite.heads` for the contract). As in libcoral, each imprinted class's sum of
embeddings survives in the saved model: the model's description lists "class_id length" lines (libcoral's
format), so training can go on from a saved model, with more pictures of a class or new classes, on
this machine or under pycoral. Base classes of the model (not imprinted) are kept with keep_classes=True
and cannot be changed.
"""

import os

import numpy as np

from edgekit.errors import EdgekitError
from edgekit.tflite.graph_edit import GraphEditor
from edgekit.tflite.heads import class_weights, extractor_of, read_imprinting_head, set_class_weights, unit_rows
from edgekit.tflite.metadata import retasked, store_metadata, stored_metadata


def parse_trained_classes(description):
    """{class_id: length of its embeddings' sum} from a model description in libcoral's format; {} when the
    description is anything else (a converter's "MLIR Converted.", say)."""
    if isinstance(description, bytes):
        description = description.decode("utf-8", "replace")
    words = (description or "").split()
    if not words or len(words) % 2:
        return {}
    trained = {}
    for class_id, length in zip(words[::2], words[1::2]):
        try:
            trained[int(class_id)] = float(length)
        except ValueError:
            return {}
    return trained


def format_trained_classes(lengths):
    """libcoral's description text for {class_id: length}, one "%d %f" line each."""
    return "".join(f"{class_id} {length:f}\n" for class_id, length in sorted(lengths.items()))


def _read(model_path):
    if isinstance(model_path, (bytes, bytearray)):
        return bytes(model_path), "model"
    try:
        with open(model_path, "rb") as f:
            return f.read(), os.fspath(model_path)
    except OSError as e:
        raise EdgekitError(f"{model_path}: cannot read the model ({e.strerror or e})") from None


class ImprintingEngine:
    """Imprints new classes into pycoral's imprinting head (L2_NORMALIZATION -> CONV_2D -> MUL -> RESHAPE ->
    SOFTMAX). `model_path`: a .tflite path (or its bytes); with `keep_classes`, the model's classes stay and
    new ones get the ids after them."""

    def __init__(self, model_path, keep_classes=False):
        self._bytes, self._name = _read(model_path)
        try:
            self._editor = GraphEditor.from_bytes(self._bytes)
        except Exception as e:  # the flatbuffer parser raises whatever it meets first
            raise EdgekitError(f"{self._name}: not a readable .tflite model ({e})") from None
        self._head = read_imprinting_head(self._editor, self._name)
        self._extractor = None
        self._metadata = stored_metadata(self._editor.model)
        self._sums, self._trainable, self._labels = [], [], []
        if keep_classes:
            lengths = parse_trained_classes(self._editor.model.description)
            labels = list(self._metadata.get("labels") or [])
            for class_id, row in enumerate(class_weights(self._editor, self._head)):
                length = lengths.get(class_id)
                # An imprinted class comes back as its sum (unit row x stored length), so that new shots
                # average with the old ones; a base class is a fixed row.
                self._sums.append(unit_rows(row[None])[0] * length if length else row)
                self._trainable.append(length is not None)
                self._labels.append(labels[class_id] if class_id < len(labels) else str(class_id))

    @property
    def embedding_dim(self):
        """The embedding's width D: what `train` takes and the extractor returns."""
        return self._head.embedding_dim

    @property
    def num_classes(self):
        """The classes the engine holds now: the base model's kept ones plus those trained so far."""
        return len(self._sums)

    @property
    def trainable(self):
        """For each class held, whether `train` may add to it: imprinted classes yes, base classes no."""
        return list(self._trainable)

    @property
    def labels(self):
        """The name of each class held now (kept classes keep the model's own; new ones as given to `train`)."""
        return list(self._labels)

    def serialize_extractor_model(self):
        """The model cut after its L2_NORMALIZATION, as .tflite bytes: its output is the normalized embedding
        [1, 1, 1, D] that `train` takes. A compiled model's Edge TPU part stays as it is."""
        if self._extractor is None:
            editor = extractor_of(GraphEditor.from_bytes(self._bytes), self._head)
            if self._metadata:
                store_metadata(editor.model, retasked(self._metadata, "embedding"))
            self._extractor = editor.to_bytes()
        return self._extractor

    def train(self, embedding, class_id, label=None):
        """Add one picture's embedding (as the extractor returns it, dequantized) to class `class_id`: an
        imprinted class already held, or exactly the next id (`num_classes`) for a new class. `label`
        (edgekit's addition) names a new class in the saved model's metadata."""
        values = np.asarray(embedding, np.float64).ravel()
        if values.size != self.embedding_dim:
            raise EdgekitError(f"the embedding has {values.size} values, but {self._name} takes "
                               f"{self.embedding_dim}: give the output of serialize_extractor_model()'s model")
        if not np.all(np.isfinite(values)) or not np.any(values):
            raise EdgekitError("the embedding is all zeros or not finite: give the extractor's dequantized output")
        if isinstance(class_id, bool) or not isinstance(class_id, (int, np.integer)):
            raise EdgekitError(f"class_id must be an integer, not {class_id!r}")
        count = len(self._sums)
        if class_id < 0 or class_id > count:
            raise EdgekitError(f"class id {class_id} is out of range: the engine holds {count} classes, so a "
                               f"new class takes id {count}")
        if class_id < count and not self._trainable[class_id]:
            raise EdgekitError(f"class {class_id} ({self._labels[class_id]}) is one of the base model's classes "
                               f"and cannot be trained by imprinting; new classes start at id {count}")
        unit = values / np.linalg.norm(values)
        if class_id == count:
            self._sums.append(unit)
            self._trainable.append(True)
            self._labels.append(str(label) if label is not None else str(class_id))
        else:
            self._sums[class_id] = self._sums[class_id] + unit
            if label is not None:
                self._labels[class_id] = str(label)

    def serialize_model(self):
        """The model with every class held written into its head, as .tflite bytes."""
        if not self._sums:
            raise EdgekitError("Model is not trained.")
        weights = np.stack(self._sums)
        self._head = set_class_weights(self._editor, self._head, weights)
        lengths = {i: float(np.linalg.norm(row)) for i, row in enumerate(weights) if self._trainable[i]}
        self._editor.model.description = format_trained_classes(lengths)
        if self._metadata or any(self._trainable):
            store_metadata(self._editor.model, {**self._metadata, "task": "classification",
                                                "labels": list(self._labels)})
        return self._editor.to_bytes()

"""Make the models test data lacks by editing real ones (never committed: written under tmp_path).

Uses the TFLite schema's object API that ships with ai-edge-litert, so the edits are exact.
"""

from pathlib import Path

from edgekit.tflite.graph_edit import litert_schema, pack, unpack

schema = litert_schema()


def load(path):
    return unpack(Path(path).read_bytes())


def save(model, path):
    Path(path).write_bytes(pack(model))
    return path


def to_float(source, target):
    """The same graph with every activation tensor float32 and unquantized (e.g. split_concat)."""
    model = load(source)
    for graph in model.subgraphs:
        for tensor in graph.tensors:
            if tensor.type in (schema.TensorType.UINT8, schema.TensorType.INT8):
                tensor.type = schema.TensorType.FLOAT32
                tensor.quantization = None
    return save(model, target)


def with_metadata(source, target, name, payload):
    """A copy of `source` carrying one more metadata entry `name` holding `payload` (bytes)."""
    model = load(source)
    buffer = schema.BufferT()
    buffer.data = list(payload)
    model.buffers.append(buffer)
    entry = schema.MetadataT()
    entry.name = name
    entry.buffer = len(model.buffers) - 1
    model.metadata = (model.metadata or []) + [entry]
    return save(model, target)

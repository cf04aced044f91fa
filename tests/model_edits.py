"""Make the models test data lacks by editing real ones (never committed: written under tmp_path).

Uses the TFLite schema's object API that ships with ai-edge-litert, so the edits are exact.
"""

import flatbuffers
from ai_edge_litert import schema_py_generated as schema


def load(path):
    with open(path, "rb") as f:
        return schema.ModelT.InitFromPackedBuf(bytearray(f.read()), 0)


def save(model, path):
    builder = flatbuffers.Builder(1024)
    builder.Finish(model.Pack(builder), file_identifier=b"TFL3")
    with open(path, "wb") as f:
        f.write(builder.Output())
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

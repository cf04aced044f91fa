"""Read a .tflite file into plain Python objects, without TensorFlow or LiteRT.

Everything that looks inside a model (the runtime, `check`, `inspect`, `compile`) reads it through
`read_model`. Damaged files raise `ModelFormatError` naming the file; nothing here can hang or allocate
more than the file's own size.
"""

import os
from dataclasses import dataclass, field
from typing import Optional

import numpy as np

from edgekit.errors import ModelFormatError
from edgekit.tflite import schema
from edgekit.tflite.flatbuf import FlatbufferError, Table, file_identifier

TFLITE_IDENTIFIER = b"TFL3"
EDGETPU_CUSTOM_OP = "edgetpu-custom-op"
# TFLite's custom op that decodes and filters SSD-style detector outputs (boxes, classes, scores, count).
DETECTION_POSTPROCESS_OP = "TFLite_Detection_PostProcess"


@dataclass(frozen=True)
class Quantization:
    scale: np.ndarray
    zero_point: np.ndarray
    quantized_dimension: int = 0
    min: Optional[np.ndarray] = None
    max: Optional[np.ndarray] = None

    @property
    def per_tensor(self):
        """(scale, zero_point) as floats/ints when there is one of each, else (0.0, 0) like LiteRT."""
        if self.scale.size == 1 and self.zero_point.size <= 1:
            return float(self.scale[0]), int(self.zero_point[0]) if self.zero_point.size else 0
        return 0.0, 0


NO_QUANTIZATION = Quantization(np.zeros(0, np.float32), np.zeros(0, np.int64))


@dataclass
class Tensor:
    index: int
    name: str
    type: str
    shape: tuple
    shape_signature: tuple
    buffer: int
    quantization: Quantization
    is_variable: bool
    data: Optional[memoryview] = field(default=None, repr=False)

    @property
    def dtype(self):
        """numpy dtype name, or None for types numpy has no name for (STRING, RESOURCE, INT4...)."""
        return _tensor_type(self.type)[1]

    @property
    def bits(self):
        return _tensor_type(self.type)[2]

    @property
    def is_constant(self):
        return self.data is not None and len(self.data) > 0

    @property
    def is_dynamic(self):
        return any(d < 0 for d in self.shape_signature)

    @property
    def is_quantized(self):
        return self.quantization.scale.size > 0

    def numpy(self):
        """The constant data as an array of the tensor's shape (None for activations)."""
        if not self.is_constant or self.dtype is None:
            return None
        return np.frombuffer(self.data, self.dtype).reshape(self.shape)


@dataclass
class Operator:
    index: int
    name: str            # builtin name (CONV_2D) or the custom code (edgetpu-custom-op)
    is_custom: bool
    version: int
    inputs: tuple        # tensor indices; -1 marks an omitted optional input
    outputs: tuple
    options: dict        # decoded builtin options (only for ops listed in schema.BUILTIN_OPTIONS)
    custom_options: bytes = field(default=b"", repr=False)


@dataclass
class Subgraph:
    index: int
    name: str
    tensors: list
    operators: list
    inputs: tuple
    outputs: tuple

    def producers(self):
        """tensor index -> index of the operator that writes it."""
        return {t: op.index for op in self.operators for t in op.outputs if t >= 0}

    def consumers(self):
        """tensor index -> indices of the operators that read it, in execution order."""
        readers = {}
        for op in self.operators:
            for t in op.inputs:
                if t >= 0:
                    readers.setdefault(t, []).append(op.index)
        return readers

    def parameter_bytes(self, op):
        """Bytes of constant data that an operator reads (weights, biases, lookup tables)."""
        return sum(len(self.tensors[t].data) for t in set(op.inputs) if t >= 0 and self.tensors[t].is_constant)


@dataclass
class Signature:
    key: str
    subgraph_index: int
    inputs: dict   # name -> tensor index
    outputs: dict


@dataclass
class Model:
    path: str
    size: int
    version: int
    description: str
    subgraphs: list
    metadata: dict = field(repr=False)     # name -> bytes
    signatures: list = field(default_factory=list)

    @property
    def main(self):
        return self.subgraphs[0]

    @property
    def is_edgetpu_compiled(self):
        return any(op.name == EDGETPU_CUSTOM_OP for g in self.subgraphs for op in g.operators)

    def operators(self):
        return [op for g in self.subgraphs for op in g.operators]

    def input_tensors(self):
        return [self.main.tensors[i] for i in self.main.inputs]

    def output_tensors(self):
        return [self.main.tensors[i] for i in self.main.outputs]


def _tensor_type(code_or_name):
    for entry in schema.TENSOR_TYPES:
        if entry[0] == code_or_name:
            return entry
    return (str(code_or_name), None, 0)


def read_model(source, name=None):
    """Parse a .tflite file (a path, or the bytes of one) into a `Model`."""
    if isinstance(source, (bytes, bytearray, memoryview)):
        buf, path = bytes(source), name or "<bytes>"
    else:
        path = os.fspath(source)
        try:
            with open(path, "rb") as f:
                buf = f.read()
        except FileNotFoundError:
            raise ModelFormatError(f"{path}: no such file") from None
        except IsADirectoryError:
            raise ModelFormatError(f"{path}: is a folder, not a .tflite model file") from None
        except OSError as e:
            raise ModelFormatError(f"{path}: cannot be read ({e.strerror})") from None
    if not buf:
        raise ModelFormatError(f"{path}: the file is empty, not a TFLite model")
    if file_identifier(buf) != TFLITE_IDENTIFIER:
        raise ModelFormatError(f"{path}: not a TFLite model (no 'TFL3' identifier); "
                               "give a .tflite file written by the TFLite converter")
    try:
        return _parse(buf, path)
    except (FlatbufferError, IndexError, UnicodeDecodeError, ValueError) as e:
        raise ModelFormatError(f"{path}: damaged or truncated TFLite model ({e}); "
                               "convert or download it again") from None


def _parse(buf, path):
    root = Table.root(buf)
    m = schema.MODEL
    buffers = [_buffer_data(b, buf) for b in root.tables(m["buffers"])]
    opcodes = [_opcode(t) for t in root.tables(m["operator_codes"])]
    subgraphs = [_subgraph(i, t, opcodes, buffers) for i, t in enumerate(root.tables(m["subgraphs"]))]
    if not subgraphs:
        raise FlatbufferError("the model has no subgraph")
    metadata = {}
    for t in root.tables(m["metadata"]):
        index = t.scalar(schema.METADATA["buffer"], "I")
        _check_index(index, len(buffers), "metadata buffer")
        metadata[t.string(schema.METADATA["name"])] = bytes(buffers[index] or b"")
    signatures = [_signature(t, len(subgraphs)) for t in root.tables(m["signature_defs"])]
    return Model(path=path, size=len(buf), version=root.scalar(m["version"], "I"),
                 description=root.string(m["description"]), subgraphs=subgraphs, metadata=metadata,
                 signatures=signatures)


def _check_index(index, count, what):
    if not 0 <= index < count:
        raise FlatbufferError(f"{what} index {index} is out of range (0..{count - 1})")


def _buffer_data(table, buf):
    f = schema.BUFFER
    offset = table.scalar(f["offset"], "Q")
    if offset > 1:
        # Models over 2 GB keep buffers after the flatbuffer, addressed from the file start.
        size = table.scalar(f["size"], "Q")
        if offset + size > len(buf):
            raise FlatbufferError(f"buffer data at {offset} runs past the end of the file")
        return memoryview(buf)[offset:offset + size]
    data = table.bytes(f["data"])
    return data if len(data) else None


def _opcode(table):
    f = schema.OPERATOR_CODE
    code = max(table.scalar(f["deprecated_builtin_code"], "b"), table.scalar(f["builtin_code"], "i"))
    custom = table.string(f["custom_code"], None)
    version = table.scalar(f["version"], "i", 1)
    if custom is not None and (code == schema.BUILTIN_OPS.index("CUSTOM")):
        return custom, True, version
    name = schema.BUILTIN_OPS[code] if 0 <= code < len(schema.BUILTIN_OPS) else f"BUILTIN_{code}"
    return name, False, version


def _quantization(table):
    if table is None:
        return NO_QUANTIZATION
    f = schema.QUANTIZATION
    mins, maxs = table.array(f["min"], "f"), table.array(f["max"], "f")
    return Quantization(scale=table.array(f["scale"], "f"), zero_point=table.array(f["zero_point"], "q"),
                        quantized_dimension=table.scalar(f["quantized_dimension"], "i"),
                        min=mins if mins.size else None, max=maxs if maxs.size else None)


def _tensor(index, table, buffers):
    f = schema.TENSOR
    type_code = table.scalar(f["type"], "b")
    type_name = schema.TENSOR_TYPES[type_code][0] if 0 <= type_code < len(schema.TENSOR_TYPES) \
        else f"TYPE_{type_code}"
    buffer = table.scalar(f["buffer"], "I")
    if buffers:
        _check_index(buffer, len(buffers), f"tensor {index} buffer")
    shape = tuple(int(d) for d in table.array(f["shape"], "i"))
    signature = tuple(int(d) for d in table.array(f["shape_signature"], "i")) or shape
    return Tensor(index=index, name=table.string(f["name"]), type=type_name, shape=shape,
                  shape_signature=signature, buffer=buffer,
                  quantization=_quantization(table.table(f["quantization"])),
                  is_variable=bool(table.scalar(f["is_variable"], "?")),
                  data=buffers[buffer] if buffers else None)


def _indices(table, field_id, count, what):
    values = tuple(int(i) for i in table.array(field_id, "i"))
    for i in values:
        if i != -1:
            _check_index(i, count, what)
    return values


def _operator(index, table, opcodes, tensor_count):
    f = schema.OPERATOR
    opcode_index = table.scalar(f["opcode_index"], "I")
    _check_index(opcode_index, len(opcodes), f"operator {index} opcode")
    name, is_custom, version = opcodes[opcode_index]
    options = {}
    fields = schema.BUILTIN_OPTIONS.get(name)
    options_table = table.table(f["builtin_options"]) if fields else None
    if options_table is not None:
        options = {key: options_table.scalar(i, fmt, default) for i, (key, fmt, default) in enumerate(fields)}
    return Operator(index=index, name=name, is_custom=is_custom, version=version,
                    inputs=_indices(table, f["inputs"], tensor_count, f"operator {index} input"),
                    outputs=_indices(table, f["outputs"], tensor_count, f"operator {index} output"),
                    options=options, custom_options=bytes(table.bytes(f["custom_options"])))


def _subgraph(index, table, opcodes, buffers):
    f = schema.SUBGRAPH
    tensors = [_tensor(i, t, buffers) for i, t in enumerate(table.tables(f["tensors"]))]
    operators = [_operator(i, t, opcodes, len(tensors)) for i, t in enumerate(table.tables(f["operators"]))]
    return Subgraph(index=index, name=table.string(f["name"]), tensors=tensors, operators=operators,
                    inputs=_indices(table, f["inputs"], len(tensors), "subgraph input"),
                    outputs=_indices(table, f["outputs"], len(tensors), "subgraph output"))


def _signature(table, subgraph_count):
    f, tm = schema.SIGNATURE_DEF, schema.TENSOR_MAP
    subgraph = table.scalar(f["subgraph_index"], "I")
    _check_index(subgraph, subgraph_count, "signature subgraph")

    def names(field_id):
        return {t.string(tm["name"]): t.scalar(tm["tensor_index"], "I") for t in table.tables(field_id)}

    return Signature(key=table.string(f["signature_key"]), subgraph_index=subgraph,
                     inputs=names(f["inputs"]), outputs=names(f["outputs"]))

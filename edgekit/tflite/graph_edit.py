"""Edit a .tflite model's first subgraph through LiteRT's object API: add tensors and ops, replace constants,
move the outputs, drop what no output needs, and pack the result again.

On-device learning rewrites the last layers of a model that is already converted, and often already compiled
for the Edge TPU (the compiled part is one custom op whose bytes pass through untouched), so it edits the file
rather than rebuilding it. `ModelBuilder` (builder.py) writes small models from nothing with the same calls.
"""

import numpy as np

from edgekit.tflite.model import TFLITE_IDENTIFIER
from edgekit.tflite.schema import BUILTIN_OPS

# Builtin options table name for each op edgekit writes (the schema's BuiltinOptions union member).
OPTIONS_TABLES = {"AVERAGE_POOL_2D": "Pool2DOptions", "RESHAPE": "ReshapeOptions",
                  "FULLY_CONNECTED": "FullyConnectedOptions", "SOFTMAX": "SoftmaxOptions",
                  "CONV_2D": "Conv2DOptions", "MUL": "MulOptions", "L2_NORMALIZATION": "L2NormOptions"}


def litert_schema():
    """LiteRT's generated flatbuffer schema module (object API: ModelT, TensorT, ...). Imported on first use:
    it is large, and `import edgekit.tflite` must stay cheap for the runtime's cold start."""
    from ai_edge_litert import schema_py_generated

    return schema_py_generated


def unpack(model_bytes):
    """A .tflite file's bytes as LiteRT's mutable object tree (its schema's ModelT), to edit and `pack` again."""
    return litert_schema().ModelT.InitFromPackedBuf(bytearray(model_bytes), 0)


def pack(model_t):
    """A schema ModelT serialized as .tflite bytes (with the TFL3 file identifier)."""
    import flatbuffers

    # The size only hints the first allocation (the builder grows as needed); the bytes come out the same.
    builder = flatbuffers.Builder(1024 + sum(len(b.data) for b in model_t.buffers or [] if b.data is not None))
    builder.Finish(model_t.Pack(builder), file_identifier=TFLITE_IDENTIFIER)
    return bytes(builder.Output())


def _numpy_types(fb):
    """TensorType code -> numpy dtype, for the types a constant of ours can have."""
    return {getattr(fb.TensorType, name): np.dtype(name.lower())
            for name in ("FLOAT32", "INT32", "UINT8", "INT8", "INT16", "INT64")}


class GraphEditor:
    """Subgraph 0 of a LiteRT `ModelT`; a fresh, empty model when none is given.

    Buffer 0 stays empty, as the schema asks: activations point at it.
    """

    def __init__(self, model=None):
        fb = litert_schema()
        self._fb = fb
        if model is None:
            model = fb.ModelT()
            model.version, model.description = 3, "written by edgekit"
            model.buffers, model.operatorCodes = [fb.BufferT()], []
            graph = fb.SubGraphT()
            graph.tensors, graph.operators, graph.inputs, graph.outputs = [], [], [], []
            model.subgraphs = [graph]
        self.model = model
        self.graph = model.subgraphs[0]
        self.model.operatorCodes = list(self.model.operatorCodes or [])
        self.graph.operators = list(self.graph.operators or [])
        self.graph.tensors = list(self.graph.tensors or [])

    @classmethod
    def from_bytes(cls, model_bytes):
        return cls(unpack(model_bytes))

    def to_bytes(self):
        return pack(self.model)

    # --- reading -------------------------------------------------------------------------------------------

    def op_name(self, index):
        """The builtin name of operator `index` ("CONV_2D"), or a custom op's own name."""
        code = self.model.operatorCodes[self.graph.operators[index].opcodeIndex]
        number = max(code.builtinCode, code.deprecatedBuiltinCode)
        name = BUILTIN_OPS[number] if number < len(BUILTIN_OPS) else f"BUILTIN_{number}"
        if name == "CUSTOM":
            custom = code.customCode
            return custom.decode("utf-8", "replace") if isinstance(custom, bytes) else str(custom)
        return name

    def op_names(self):
        return [self.op_name(i) for i in range(len(self.graph.operators))]

    def shape(self, tensor):
        return [int(d) for d in self.graph.tensors[tensor].shape]

    def dtype(self, tensor):
        return _numpy_types(self._fb).get(self.graph.tensors[tensor].type)

    def quantization(self, tensor):
        """(scale, zero_point) arrays of a tensor; empty arrays when it has none."""
        q = self.graph.tensors[tensor].quantization
        if q is None or q.scale is None or len(q.scale) == 0:
            return np.zeros(0, np.float64), np.zeros(0, np.int64)
        zero = q.zeroPoint if q.zeroPoint is not None else [0] * len(q.scale)
        return np.asarray(q.scale, np.float64), np.asarray(zero, np.int64)

    def array(self, tensor):
        """A constant tensor's values in its own dtype and shape; None for an activation."""
        t = self.graph.tensors[tensor]
        data = self.model.buffers[t.buffer].data if t.buffer else None
        if data is None or len(data) == 0:
            return None
        return np.frombuffer(np.asarray(data, np.uint8).tobytes(), self.dtype(tensor)).reshape(self.shape(tensor))

    def producer(self, tensor):
        """The index of the operator writing `tensor`, or None for an input or a constant."""
        for i, op in enumerate(self.graph.operators):
            if tensor in op.outputs:
                return i
        return None

    # --- writing -------------------------------------------------------------------------------------------

    def tensor(self, name, shape, dtype, scale=None, zero_point=None, data=None, quantized_dimension=0):
        """Add a tensor (constant when `data` is given) and return its index.

        `scale`/`zero_point` may be scalars (per-tensor) or sequences (per-channel along
        `quantized_dimension`).
        """
        fb = self._fb
        dtype = np.dtype(dtype)
        t = fb.TensorT()
        t.name, t.shape = name, [int(d) for d in shape]
        t.type = getattr(fb.TensorType, dtype.name.upper())
        t.buffer = 0
        self.graph.tensors.append(t)
        index = len(self.graph.tensors) - 1
        if scale is not None:
            self.set_quantization(index, scale, zero_point, quantized_dimension)
        if data is not None:
            self.set_array(index, data)
        return index

    def set_quantization(self, tensor, scale, zero_point=None, quantized_dimension=0):
        q = self._fb.QuantizationParametersT()
        q.scale = [float(s) for s in np.atleast_1d(scale)]
        zero = np.atleast_1d(0 if zero_point is None else zero_point)
        if zero.size == 1 and len(q.scale) > 1:
            zero = np.repeat(zero, len(q.scale))
        q.zeroPoint = [int(z) for z in zero]
        q.quantizedDimension = quantized_dimension
        self.graph.tensors[tensor].quantization = q

    def set_shape(self, tensor, shape):
        t = self.graph.tensors[tensor]
        t.shape = [int(d) for d in shape]
        t.shapeSignature = None  # a signature left from the converter would disagree with the new shape

    def set_array(self, tensor, data):
        """Give `tensor` new constant values (its shape follows them), in a buffer of its own."""
        t = self.graph.tensors[tensor]
        array = np.ascontiguousarray(data, dtype=self.dtype(tensor))
        self.set_shape(tensor, array.shape)
        buffer = self._fb.BufferT()
        # The object API packs a numpy uint8 array as one byte vector, much faster than a list.
        buffer.data = np.frombuffer(array.tobytes(), dtype=np.uint8)
        # A buffer this tensor owns is replaced in place, so that a model edited again and again does not
        # grow; a shared one (converters share a buffer between equal constants) is left to its other users.
        if t.buffer and not any(other is not t and other.buffer == t.buffer
                                for graph in self.model.subgraphs for other in graph.tensors or []):
            self.model.buffers[t.buffer] = buffer
            return
        self.model.buffers.append(buffer)
        t.buffer = len(self.model.buffers) - 1

    def operator(self, name, inputs, outputs, version=1, **options):
        """Add builtin op `name` (e.g. "SOFTMAX") with its options given as the schema's field names."""
        fb = self._fb
        number = getattr(fb.BuiltinOperator, name)
        codes = self.model.operatorCodes
        found = [i for i, c in enumerate(codes)
                 if max(c.builtinCode, c.deprecatedBuiltinCode) == number and c.version == version]
        if found:
            code_index = found[0]
        else:
            code = fb.OperatorCodeT()
            # Readers older than schema v3a only look at the deprecated byte field; fill both.
            code.builtinCode, code.deprecatedBuiltinCode, code.version = number, min(number, 127), version
            codes.append(code)
            code_index = len(codes) - 1
        op = fb.OperatorT()
        op.opcodeIndex = code_index
        op.inputs, op.outputs = list(inputs), list(outputs)
        table = OPTIONS_TABLES.get(name)
        if table is not None:
            values = getattr(fb, table + "T")()
            for field, value in options.items():
                if not hasattr(values, field):
                    raise ValueError(f"{name}: {table} has no field {field}")
                setattr(values, field, value)
            op.builtinOptionsType = getattr(fb.BuiltinOptions, table)
            op.builtinOptions = values
        elif options:
            raise ValueError(f"{name}: options are not supported for this op here")
        self.graph.operators.append(op)
        return len(self.graph.operators) - 1

    def set_outputs(self, tensors):
        """Make `tensors` the graph's outputs, in the signature too (its first output's name is kept)."""
        self.graph.outputs = list(tensors)
        for signature in self.model.signatureDefs or []:
            if signature.subgraphIndex:
                continue
            names = [m.name for m in signature.outputs or []] or ["output_0"]
            mapped = []
            for i, tensor in enumerate(tensors):
                entry = self._fb.TensorMapT()
                entry.name, entry.tensorIndex = (names[i] if i < len(names) else f"output_{i}"), tensor
                mapped.append(entry)
            signature.outputs = mapped

    def keep_only_needed(self):
        """Drop the operators no output depends on (what follows a new, earlier output)."""
        needed, wanted = [], set(self.graph.outputs)
        for op in reversed(self.graph.operators):
            if wanted.intersection(op.outputs):
                needed.append(op)
                wanted.update(i for i in op.inputs if i >= 0)
        self.graph.operators = needed[::-1]

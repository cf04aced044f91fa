"""Write small, real quantized .tflite models with the flatbuffers package (no TensorFlow, no downloads).

`make demo` runs on a fresh machine with no test data and no model hub, so edgekit makes the model it
demonstrates: `colour_classifier` is a genuine uint8 image classifier, built only from ops the Edge TPU
compiler maps, at op versions compiler 16 parses, that LiteRT runs and edgekit reads like any other model.
Tests build their models with `ModelBuilder` too.

LiteRT's generated schema module (`ai_edge_litert.schema_py_generated`) is imported inside the functions:
it is large, and `import edgekit.tflite` must stay cheap for the runtime's cold start.
"""

import numpy as np

from edgekit.tflite.model import TFLITE_IDENTIFIER

COLOUR_LABELS = ("red", "green", "blue", "yellow", "white", "black")

# The classifier sees only the picture's mean colour x = (r, g, b), each in [-1, 1) as (pixel - 128) / 128,
# and scores each label by w . x + b (rows follow COLOUR_LABELS). The weights were fit by multinomial
# logistic regression on the mean colours of synthetic pictures (one label's shade covering 55-100% of
# the picture, the rest one or two other shades), then rounded. A hand-placed "nearest corner of the RGB
# cube" rule does as well on pure colours, but not on pictures such as a red fruit on a white plate,
# whose mean is pink: the fit learnt that red is told from yellow by green against blue, not by red.
_COLOUR_WEIGHTS = np.array([
    [7.9, -7.4, -3.7],    # red
    [-7.6, 7.9, -3.4],    # green
    [-4.8, -5.1, 8.9],    # blue
    [5.5, 5.6, -5.4],     # yellow
    [4.0, 4.2, 7.6],      # white
    [-5.0, -5.2, -4.0],   # black
], dtype=np.float64)
_COLOUR_BIASES = np.array([-0.8, -0.7, 1.1, -0.1, 1.5, -1.0], dtype=np.float64)
# Sharpens the fitted scores so that a clear majority colour scores well above one half; the order of the
# scores, and so every answer, stays the fit's.
_COLOUR_SHARPNESS = 1.3

# Each op's version -> the first TensorFlow Lite release that runs it (from TensorFlow's
# lite/tools/versioning/runtime_version.cc); the model's "min_runtime_version" entry is the latest of them,
# as the TFLite converter writes it.
_MIN_RUNTIME = {
    ("AVERAGE_POOL_2D", 1): "1.5.0", ("AVERAGE_POOL_2D", 2): "1.14.0",
    ("RESHAPE", 1): "1.5.0",
    ("FULLY_CONNECTED", 1): "1.5.0", ("FULLY_CONNECTED", 2): "1.10.0", ("FULLY_CONNECTED", 3): "1.14.0",
    ("FULLY_CONNECTED", 4): "1.14.0",
    ("SOFTMAX", 1): "1.5.0", ("SOFTMAX", 2): "1.14.0",
}

# Builtin options table name for each op this module writes.
_OPTIONS = {"AVERAGE_POOL_2D": "Pool2DOptions", "RESHAPE": "ReshapeOptions",
            "FULLY_CONNECTED": "FullyConnectedOptions", "SOFTMAX": "SoftmaxOptions"}


def litert_schema():
    """LiteRT's generated flatbuffer schema module (object API: ModelT, TensorT, ...)."""
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


def _version_key(version):
    return tuple(int(part) for part in version.split("."))


class ModelBuilder:
    """Collects one subgraph's tensors and operators and packs them into .tflite bytes.

    Buffer 0 stays empty, as the schema asks: activations point at it.
    """

    def __init__(self, description="written by edgekit"):
        fb = litert_schema()
        self._fb = fb
        self.description = description
        self.tensors = []
        self.buffers = [fb.BufferT()]
        self.operators = []
        self.codes = []          # (builtin name, version), index = opcode index
        self.metadata = {}

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
        if scale is not None:
            q = fb.QuantizationParametersT()
            q.scale = [float(s) for s in np.atleast_1d(scale)]
            q.zeroPoint = [int(z) for z in np.atleast_1d(0 if zero_point is None else zero_point)]
            q.quantizedDimension = quantized_dimension
            t.quantization = q
        if data is not None:
            array = np.ascontiguousarray(data, dtype=dtype)
            if array.shape != tuple(t.shape):
                raise ValueError(f"tensor {name}: data shape {array.shape} is not {tuple(t.shape)}")
            buffer = fb.BufferT()
            # The object API packs a numpy uint8 array as one byte vector, much faster than a list.
            buffer.data = np.frombuffer(array.tobytes(), dtype=np.uint8)
            self.buffers.append(buffer)
            t.buffer = len(self.buffers) - 1
        self.tensors.append(t)
        return len(self.tensors) - 1

    def operator(self, name, inputs, outputs, version=1, **options):
        """Add builtin op `name` (e.g. "SOFTMAX") with its options given as the schema's field names."""
        fb = self._fb
        key = (name, version)
        if key not in self.codes:
            self.codes.append(key)
        op = fb.OperatorT()
        op.opcodeIndex = self.codes.index(key)
        op.inputs, op.outputs = list(inputs), list(outputs)
        table = _OPTIONS.get(name)
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
        self.operators.append(op)
        return len(self.operators) - 1

    def min_runtime_version(self):
        """The oldest TFLite runtime for the ops used so far, or None when one is not in the table."""
        versions = [_MIN_RUNTIME.get(code) for code in self.codes]
        if not versions or None in versions:
            return None
        return max(versions, key=_version_key)

    def finish(self, inputs, outputs, name="main"):
        """The model as .tflite bytes (file identifier TFL3)."""
        fb = self._fb
        subgraph = fb.SubGraphT()
        subgraph.name = name
        subgraph.tensors, subgraph.operators = self.tensors, self.operators
        subgraph.inputs, subgraph.outputs = list(inputs), list(outputs)

        codes = []
        for builtin, version in self.codes:
            code = fb.OperatorCodeT()
            number = getattr(fb.BuiltinOperator, builtin)
            # Readers older than schema v3a only look at the deprecated byte field; fill both.
            code.builtinCode, code.deprecatedBuiltinCode = number, min(number, 127)
            code.version = version
            codes.append(code)

        buffers = list(self.buffers)
        entries = []
        metadata = dict(self.metadata)
        runtime = self.min_runtime_version()
        if runtime is not None:
            # The converter stores the version string zero-padded to 16 bytes; Coral's models carry it.
            metadata.setdefault("min_runtime_version", runtime.encode("ascii").ljust(16, b"\0"))
        for key, value in metadata.items():
            buffer = fb.BufferT()
            buffer.data = np.frombuffer(bytes(value), dtype=np.uint8)
            buffers.append(buffer)
            entry = fb.MetadataT()
            entry.name, entry.buffer = key, len(buffers) - 1
            entries.append(entry)

        model = fb.ModelT()
        model.version, model.description = 3, self.description
        model.operatorCodes, model.subgraphs, model.buffers = codes, [subgraph], buffers
        model.metadata = entries or None
        return pack(model)


def colour_classifier(size=96):
    """A uint8 [1, size, size, 3] classifier telling which of COLOUR_LABELS dominates a picture.

    AVERAGE_POOL_2D over the whole picture -> RESHAPE [1, 3] -> FULLY_CONNECTED -> SOFTMAX [1, 6]. The
    input takes raw pixels and is quantized like Coral's classifiers (scale 1/128, zero point 128, i.e.
    (pixel - 128) / 128); the output is uint8 probabilities at scale 1/256.

    The weights are uint8 like every other tensor, as in Coral's uint8 classifiers. int8 weights would
    need int8 activations to be consistent, hence QUANTIZE ops after the raw-pixel input and before the
    output (runtime 13+, and the compiler usually leaves an input QUANTIZE on the CPU). LiteRT does run
    uint8 activations against int8 weights, but no converter writes that mix and nothing documents what
    the Edge TPU compiler makes of it. All-uint8 keeps every op at version 1, which every compiler and
    runtime parses.
    """
    if size < 1:
        raise ValueError(f"size must be positive, not {size}")
    labels = len(COLOUR_LABELS)
    weights = _COLOUR_WEIGHTS * _COLOUR_SHARPNESS
    biases = _COLOUR_BIASES * _COLOUR_SHARPNESS

    m = ModelBuilder("edgekit colour classifier (mean colour -> dominant colour)")
    pixel_scale, pixel_zero = 1.0 / 128, 128
    image = m.tensor("image", [1, size, size, 3], np.uint8, pixel_scale, pixel_zero)
    # Averaging keeps the input's quantization (LiteRT requires it for quantized AVERAGE_POOL_2D).
    pooled = m.tensor("mean_colour", [1, 1, 1, 3], np.uint8, pixel_scale, pixel_zero)
    flat = m.tensor("mean_colour_flat", [1, 3], np.uint8, pixel_scale, pixel_zero)
    shape = m.tensor("flat_shape", [2], np.int32, data=np.array([1, 3], np.int32))

    # uint8 weights, asymmetric over the weights' own range so that 255 steps cover exactly it.
    low, high = min(weights.min(), 0.0), max(weights.max(), 0.0)
    weight_scale = (high - low) / 255
    weight_zero = int(round(-low / weight_scale))
    q_weights = np.clip(np.round(weights / weight_scale) + weight_zero, 0, 255).astype(np.uint8)
    kernel = m.tensor("colour_weights", [labels, 3], np.uint8, weight_scale, weight_zero, data=q_weights)
    # Biases are int32 at input scale x weight scale, as every quantized TFLite kernel expects.
    bias_scale = pixel_scale * weight_scale
    bias = m.tensor("colour_bias", [labels], np.int32, bias_scale, 0,
                    data=np.round(biases / bias_scale).astype(np.int32))

    # Scores span at most |w| . 1 + |b| over inputs in [-1, 1); the uint8 range is centred on zero and
    # sized to hold them so no class saturates.
    reach = float(np.max(np.abs(weights).sum(axis=1) + np.abs(biases)))
    score_scale = 2 * reach / 255
    scores = m.tensor("scores", [1, labels], np.uint8, score_scale, 128)
    probabilities = m.tensor("probabilities", [1, labels], np.uint8, 1.0 / 256, 0)

    m.operator("AVERAGE_POOL_2D", [image], [pooled], padding=1, strideW=1, strideH=1,  # padding 1 = VALID
               filterWidth=size, filterHeight=size)
    m.operator("RESHAPE", [pooled, shape], [flat], newShape=[1, 3])
    m.operator("FULLY_CONNECTED", [flat, kernel, bias], [scores])
    m.operator("SOFTMAX", [scores], [probabilities], beta=1.0)
    return m.finish([image], [probabilities])

"""Models the test data lacks, made by editing the real ones with the TFLite schema's object API.

Written under tmp_path by the tests; never committed. Each function takes a source .tflite and a target path.
"""

import numpy as np
from model_edits import load, save

from edgekit.tflite.graph_edit import litert_schema

fb = litert_schema()
T = fb.TensorType
OPS = fb.BuiltinOperator


def _opcode(model, builtin, version=1):
    code = fb.OperatorCodeT()
    code.builtinCode = builtin
    code.deprecatedBuiltinCode = min(builtin, 127)
    code.version = version
    model.operatorCodes.append(code)
    return len(model.operatorCodes) - 1


def _name(model, op):
    code = model.operatorCodes[op.opcodeIndex]
    return {v: k for k, v in vars(OPS).items() if not k.startswith("_")}[max(code.builtinCode,
                                                                          code.deprecatedBuiltinCode)]


def all_float(source, target):
    """Every 8-bit tensor float32 and unquantized: a model converted without quantization."""
    model = load(source)
    for tensor in model.subgraphs[0].tensors:
        if tensor.type in (T.UINT8, T.INT8):
            tensor.type = T.FLOAT32
            tensor.quantization = None
    return save(model, target)


def dynamic_batch(source, target):
    """The input's batch dimension unknown (-1), as Keras models export by default."""
    model = load(source)
    graph = model.subgraphs[0]
    for index in graph.inputs:
        tensor = graph.tensors[index]
        tensor.shapeSignature = [-1] + list(tensor.shape[1:])
    return save(model, target)


def op_version(source, target, op_name, version):
    """Every opcode of `op_name` at `version` (e.g. CONV_2D v6 as TensorFlow 2.9 writes it)."""
    model = load(source)
    for code in model.operatorCodes:
        if max(code.builtinCode, code.deprecatedBuiltinCode) == getattr(OPS, op_name):
            code.version = version
    return save(model, target)


def replace_op(source, target, index, op_name):
    """Op `index` becomes `op_name` on its first input (e.g. LEAKY_RELU where a conv was)."""
    model = load(source)
    op = model.subgraphs[0].operators[index]
    op.opcodeIndex = _opcode(model, getattr(OPS, op_name))
    op.inputs = list(op.inputs[:1])
    op.builtinOptionsType, op.builtinOptions = 0, None
    return save(model, target)


def float_input(source, target):
    """A float32 input followed by QUANTIZE, as TF2's converter writes with float I/O."""
    model = load(source)
    graph = model.subgraphs[0]
    old = graph.tensors[graph.inputs[0]]
    tensor = fb.TensorT()
    tensor.shape, tensor.type, tensor.name = list(old.shape), T.FLOAT32, b"float_input"
    tensor.buffer = 0
    graph.tensors.append(tensor)
    quantize = fb.OperatorT()
    quantize.opcodeIndex = _opcode(model, OPS.QUANTIZE)
    quantize.inputs, quantize.outputs = [len(graph.tensors) - 1], [graph.inputs[0]]
    graph.operators.insert(0, quantize)
    graph.inputs = [len(graph.tensors) - 1]
    return save(model, target)


def batch_of(source, target, batch):
    """Every activation tensor with batch `batch` (rank rule: only 3 innermost dims may exceed 1)."""
    model = load(source)
    for tensor in model.subgraphs[0].tensors:
        data = model.buffers[tensor.buffer].data
        if data is None or len(data) == 0:
            if tensor.shape is not None and len(tensor.shape) == 4:
                tensor.shape = [batch] + list(tensor.shape[1:])
    return save(model, target)


def float_output(source, target):
    """A DEQUANTIZE after the output, as TF2's converter writes with float outputs."""
    model = load(source)
    graph = model.subgraphs[0]
    old = graph.tensors[graph.outputs[0]]
    tensor = fb.TensorT()
    tensor.shape, tensor.type, tensor.name, tensor.buffer = list(old.shape), T.FLOAT32, b"float_output", 0
    graph.tensors.append(tensor)
    dequantize = fb.OperatorT()
    dequantize.opcodeIndex = _opcode(model, OPS.DEQUANTIZE)
    dequantize.inputs, dequantize.outputs = [graph.outputs[0]], [len(graph.tensors) - 1]
    graph.operators.append(dequantize)
    graph.outputs = [len(graph.tensors) - 1]
    return save(model, target)


def float_tensor(source, target, op_index):
    """Op `op_index`'s output float32: a model with one stray float op in the middle."""
    model = load(source)
    graph = model.subgraphs[0]
    tensor = graph.tensors[graph.operators[op_index].outputs[0]]
    tensor.type, tensor.quantization = T.FLOAT32, None
    return save(model, target)


def big_weights(source, target, nbytes):
    """The first CONV_2D's weights padded to `nbytes` (parameters beyond the on-chip cache)."""
    model = load(source)
    graph = model.subgraphs[0]
    conv = next(op for op in graph.operators if _name(model, op) == "CONV_2D")
    weights = graph.tensors[conv.inputs[1]]
    model.buffers[weights.buffer].data = np.zeros(nbytes, np.uint8)   # numpy packs fast; a bytearray does not
    return save(model, target)

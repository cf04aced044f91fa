"""Empirical bias correction of a full-int8 model (`--bias-correction`; on by default for classifiers).

Rounding weights and activations to 8 bits shifts the mean of many layer outputs a little, and the shifts
add up through a deep network. Nagel et al., "Data-Free Quantization Through Weight Equalization and Bias
Correction" (ICCV 2019, arXiv:1906.04721), correct a layer's expected output error through its bias; they
derive the error from batch-norm statistics when no data is at hand, and measure it when there is, which is
what we do with the calibration pictures. For each CONV_2D / DEPTHWISE_CONV_2D / FULLY_CONNECTED we measure,
per output channel, the mean difference between the float model's output and the int8 model's (dequantized),
and add it to the int32 bias.

Layers are corrected one at a time in execution order, each measured on the model with the earlier ones
already corrected: the shift measured at a layer includes what the layers above it passed down, so
correcting several layers from one measurement would correct an upstream shift at its source and once more
downstream. Cost: one pass over `samples` pictures per layer (`benchmarks/bench_convert.py` measures it, and
what the correction buys).

Outputs with a fused ReLU/ReLU6 are compared only where the float value is inside the activation's linear
part: a clipped value says nothing about the bias.
"""

import numpy as np

from edgekit.calibration.ranges import tensor_reader
from edgekit.runtime.adapters.common import dequantize

CORRECTED_OPS = ("CONV_2D", "DEPTHWISE_CONV_2D", "FULLY_CONNECTED")
WAVE = 1           # layers corrected per pass over the samples (see above)
SAMPLES = 32       # pictures per pass: the default of `convert(bias_samples=...)`
INT8_RANGE = np.array([-128, 127])


def targets(int8_model, float_model):
    """[(op index, output tensor index in int8, output index in float, bias tensor index)] in execution order,
    for ops whose output exists under the same name and shape in the float model."""
    float_by_name = {}
    for t in float_model.main.tensors:
        if not t.is_constant and t.type.startswith("FLOAT"):
            float_by_name.setdefault(t.name, t)
    found = []
    graph = int8_model.main
    for op in graph.operators:
        if op.name not in CORRECTED_OPS or len(op.inputs) < 3 or op.inputs[2] < 0:
            continue
        out = graph.tensors[op.outputs[0]]
        bias = graph.tensors[op.inputs[2]]
        reference = float_by_name.get(out.name)
        if reference is None or reference.shape != out.shape or bias.type != "INT32" or not out.is_quantized:
            continue
        found.append((op.index, out.index, reference.index, bias.index))
    return found


def _channel_error(reference, values, linear):
    """Per-channel mean of reference - values over the elements where `linear` holds (last axis = channel)."""
    difference = np.where(linear, reference - values, 0.0).reshape(-1, reference.shape[-1])
    counts = linear.reshape(-1, reference.shape[-1]).sum(axis=0)
    return difference.sum(axis=0), counts


def correct(int8_bytes, float_bytes, float_inputs, int8_inputs, samples=SAMPLES):
    """The int8 model bytes with corrected biases. float_inputs / int8_inputs: matching input batches."""
    from edgekit.tflite.graph_edit import litert_schema, pack, unpack
    from edgekit.tflite.model import read_model

    int8_model, float_model = read_model(int8_bytes), read_model(float_bytes)
    layers = targets(int8_model, float_model)
    float_run = tensor_reader(float_bytes)
    float_input = float_run.get_input_details()[0]["index"]
    model_t = unpack(int8_bytes)
    tensors_t = model_t.subgraphs[0].tensors
    count = min(samples, len(float_inputs))
    current = bytes(int8_bytes)
    for start in range(0, len(layers), WAVE):
        wave = layers[start:start + WAVE]
        sums = {op: 0.0 for op, *_ in wave}
        counts = {op: 0 for op, *_ in wave}
        run = tensor_reader(current)
        run_input = run.get_input_details()[0]["index"]
        for k in range(count):
            float_run.set_tensor(float_input, float_inputs[k])
            float_run.invoke()
            run.set_tensor(run_input, int8_inputs[k])
            run.invoke()
            for op, out, reference, _ in wave:
                t = int8_model.main.tensors[out]
                scale, zero_point = t.quantization.per_tensor
                values = dequantize(run.get_tensor(out), scale, zero_point, np.float64)
                expected = float_run.get_tensor(reference).astype(np.float64)
                low, high = dequantize(INT8_RANGE, scale, zero_point, np.float64)
                # Strictly inside the int8 range: off ReLU's floor and ReLU6's ceiling, the linear part.
                linear = (expected > low + 1e-6) & (expected < high - 1e-6)
                s, c = _channel_error(expected, values, linear)
                sums[op] = sums[op] + s
                counts[op] = counts[op] + c
        for op, out, reference, bias in wave:
            bias_t = tensors_t[bias]
            bias_scales = np.asarray(bias_t.quantization.scale, np.float64)
            shift = np.where(counts[op] > 0, sums[op] / np.maximum(counts[op], 1), 0.0)
            if sum(t.buffer == bias_t.buffer for t in tensors_t) > 1:
                # The converter shares identical constant buffers; this bias gets its own before it changes.
                copy = litert_schema().BufferT()
                copy.data = np.array(model_t.buffers[bias_t.buffer].data, np.uint8)
                model_t.buffers.append(copy)
                bias_t.buffer = len(model_t.buffers) - 1
            buffer = model_t.buffers[bias_t.buffer]
            data = np.frombuffer(np.asarray(buffer.data, np.uint8).tobytes(), np.int32).astype(np.int64)
            steps = np.round(shift / (bias_scales if bias_scales.size == data.size else bias_scales[0]))
            data = np.clip(data + steps.astype(np.int64), -2**31, 2**31 - 1).astype(np.int32)
            buffer.data = np.frombuffer(data.tobytes(), np.uint8)
        current = pack(model_t)
    return current

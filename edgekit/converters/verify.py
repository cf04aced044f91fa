"""After conversion: is the model what the Edge TPU compiler needs? Fails naming the op when not.

- Every tensor 8-bit, except int32 constants (biases, shapes, axes) and the float tensors around a
  detection post-processing op (which runs on the CPU by design, after the Edge TPU part).
- Every op version within what compiler 16 parses (`edgekit.compiler.rules`, the table `check` uses).
- Then `edgekit.compiler.check.predict` says which ops will stay on the CPU: a warning, or an error under
  strict; an imprinting head stays there on purpose (`check.LearningHead`) and is neither.
"""

from collections import namedtuple

from edgekit.compiler import check, rules
from edgekit.errors import EdgekitError
from edgekit.tflite.model import DETECTION_POSTPROCESS_OP as POSTPROCESS_OP

CheckResult = namedtuple("CheckResult", "prediction cpu_ops warnings")


class ConversionCheckError(EdgekitError):
    exit_code = 1


def _postprocess_tensors(graph):
    """Tensors that belong to the CPU post-processing tail: the custom op's inputs/outputs and the
    DEQUANTIZE ops that feed it (the heads are dequantized right before it)."""
    tail = set()
    producer = graph.producers()
    for op in graph.operators:
        if op.name != POSTPROCESS_OP:
            continue
        tail.update(i for i in op.outputs if i >= 0)
        for i in op.inputs:
            if i < 0:
                continue
            tail.add(i)
            feeding = graph.operators[producer[i]] if i in producer else None
            if feeding is not None and feeding.name == "DEQUANTIZE":
                tail.update(j for j in feeding.outputs if j >= 0)
    return tail


def wide_tensors(model):
    """(op, tensor) pairs where an op touches a tensor that is not 8-bit and is not allowed to be."""
    graph = model.main
    allowed_float = _postprocess_tensors(graph)
    found = []
    for op in graph.operators:
        for i in [i for i in op.inputs + op.outputs if i >= 0]:
            t = graph.tensors[i]
            if t.type in rules.EIGHT_BIT or i in allowed_float:
                continue
            if t.type == "INT32" and t.is_constant:
                continue
            if op.name == POSTPROCESS_OP:
                continue
            found.append((op, t))
    return found


def verify(model, strict=False, head=None):
    """Raise ConversionCheckError on a non-8-bit tensor or too-new op; return the CPU ops as warnings.
    head: the model's `check.LearningHead`, whose ops stay on the CPU by design, or None."""
    wide = wide_tensors(model)
    if wide:
        op, t = wide[0]
        more = f" (and {len(wide) - 1} more)" if len(wide) > 1 else ""
        raise ConversionCheckError(
            f"op {op.index} {op.name} uses tensor '{t.name}' of type {t.type}, not 8-bit{more}: the Edge TPU "
            "compiler would report 'Model not quantized'; make the layer quantizable (a builtin op with an int8 "
            "kernel) or replace it")
    versions = check.version_problems(model)
    if versions:
        op, newest = versions[0]
        known = check.known_versions_text(newest)
        raise ConversionCheckError(
            f"op {op.index} {op.name} came out as version {op.version}, but edgetpu_compiler 16 knows it {known}: "
            f"avoid the feature that needs it (e.g. per-tensor int16 or dilation) or convert with TensorFlow 2.5")
    prediction = check.predict(model, head=head)
    cpu = [v for v in prediction.ops if v.status == "cpu"]
    # The post-processing op and a learning head run on the CPU by design; everything else there costs speed.
    unexpected = [v for v in check.unintended_cpu_ops(prediction)
                  if v.op not in (POSTPROCESS_OP,) and not _expected_tail(model, v)]
    warnings = []
    if unexpected:
        message = cpu_message(unexpected)
        scores = prediction.class_scores
        if scores is not None and scores.cpu_ops:
            message += "; " + check.class_count_fix(model.main, scores)
        if strict:
            raise ConversionCheckError(message + " (refused under --strict)")
        warnings.append(message)
    return CheckResult(prediction, cpu, warnings)


def _expected_tail(model, verdict):
    """Detection: the DEQUANTIZEs before the post-processing op stay on the CPU by design (Model Maker's
    EfficientDet-Lite0 compiles the same way, google-coral/edgetpu#560). The heads' RESHAPE / CONCATENATION map
    unless the class scores outgrow the Edge TPU (`check.class_scores`), which is worth a warning."""
    if not any(op.name == POSTPROCESS_OP for op in model.operators()):
        return False
    return verdict.op == "DEQUANTIZE" or verdict.reason == rules.MORE_THAN_ONE_SUBGRAPH


def cpu_message(verdicts):
    """One line: which ops cannot map (the causes, with their fix) and how many follow them onto the CPU."""
    causes = [v for v in verdicts if v.reason != rules.MORE_THAN_ONE_SUBGRAPH]
    after = len(verdicts) - len(causes)
    names = ", ".join(dict.fromkeys(v.op for v in causes))
    first = causes[0] if causes else verdicts[0]
    message = (f"{len(verdicts)} ops will run on the CPU, not the Edge TPU: {names or first.op} "
               f"(first: op {first.index} {first.op}: {first.detail or first.reason})")
    if after:
        message += f", and {after} supported ops after it (one Edge TPU subgraph only)"
    return message

"""Predict, op by op, what edgetpu_compiler 16 will do with a model, without running it.

Every fact comes from `rules`; this module only applies them: first each op on its own merits, then the
data-flow partition rule (one Edge TPU region: an op maps when it is supported and every tensor it reads
comes from a mapped op, a graph input, a variable or a constant; a failure cuts everything downstream).
CPU ops fed only by graph inputs (a QUANTIZE of a float input) stay in front of the region and cut nothing.
"""

import numbers
import os
import re
import shlex
from collections import Counter, namedtuple

from edgekit.compiler import rules
from edgekit.errors import EdgekitError
from edgekit.tflite.model import DETECTION_POSTPROCESS_OP, read_model

OpVerdict = namedtuple("OpVerdict", "index op version status reason detail")   # status: "tpu" | "cpu"
Fatal = namedtuple("Fatal", "kind message compiler_says fix")    # kind: version | dynamic | not_quantized
Prediction = namedtuple("Prediction", "path ops cut fatal float_ops parameter_bytes cached_bytes "
                                      "streamed_bytes fixes min_runtime multiple_subgraphs class_scores "
                                      "learning_head edgetpus")
# How many Edge TPUs keep every parameter of the mapped ops on chip when the model is compiled in that many
# segments (edgetpu_compiler --num_segments, which splits so that each segment holds about the same parameter
# bytes): count; parameter_bytes of the mapped ops, each constant once; cache_bytes, what one Edge TPU caches;
# oversized, the `OversizedOp`s whose own parameters exceed that (they stream whatever the count); commands,
# what to type to compile and run the model in `count` segments (empty when one Edge TPU is enough).
EdgeTpuCount = namedtuple("EdgeTpuCount", "count parameter_bytes cache_bytes oversized commands")
OversizedOp = namedtuple("OversizedOp", "index op parameter_bytes")
# A detector's class scores (the scores input of TFLite_Detection_PostProcess, [1, anchors, classes]):
# most_classes is how many classes still map at this anchor count, cpu_ops the indices of the ops that build
# or squash the scores and stay on the CPU because of their size (empty when the class count costs nothing).
ClassScores = namedtuple("ClassScores", "tensor classes anchors values most_classes cpu_ops")
# An on-device learning head that stays on the CPU on purpose. kind: "imprinting"; tensor: the name of the
# tensor where the Edge TPU part ends (edgetpu_compiler's --intermediate_tensors); ops: the head's operator
# indices, in execution order.
LearningHead = namedtuple("LearningHead", "kind tensor ops")
IMPRINTING = "imprinting"
# Why: ImprintingEngine (pycoral's, and edgekit.learn's) rewrites the head's class weights in the model file,
# compiled or not, and an op compiled into the Edge TPU's custom op keeps its weights where nothing can
# rewrite them; pycoral's compiled imprinting models leave the same tail on the CPU.
IMPRINTING_HEAD_WHY = "so that ImprintingEngine can rewrite its class weights, as in pycoral's imprinting models"


class UnusableModelError(EdgekitError):
    """The compiler would reject the model as a whole (or it is not a CPU model at all)."""

    exit_code = 2


def check_file(path, min_runtime=rules.DEFAULT_RUNTIME, multiple_subgraphs=False, allow_fatal=False):
    """Read and predict; raise UnusableModelError (one line: what, which file, what to do) when fatal,
    unless allow_fatal (then the caller reports `prediction.fatal` itself, e.g. as JSON)."""
    model = read_model(path)
    if model.is_edgetpu_compiled:
        raise UnusableModelError(f"{path}: already compiled for the Edge TPU (it has edgetpu-custom-op); "
                                 f"run `edgekit inspect {path}`, or check the CPU model it came from")
    prediction = predict(model, min_runtime, multiple_subgraphs, learning_head_in_file(model))
    if prediction.fatal and not allow_fatal:
        raise_fatal(prediction)
    return prediction


def raise_fatal(prediction):
    raise UnusableModelError(f"{prediction.path}: {prediction.fatal.message}; {prediction.fatal.fix}")


def learning_head(model, model_bytes):
    """The `LearningHead` of `model` (whose file's bytes are `model_bytes`) when it ends in pycoral's imprinting
    head (`edgekit.tflite.heads` knows the contract), else None. The Edge TPU part ends at the tensor that
    feeds the L2_NORMALIZATION, and the head from there on stays on the CPU (IMPRINTING_HEAD_WHY)."""
    if not any(op.name == "L2_NORMALIZATION" for op in model.main.operators):
        return None                 # no head: the model is never unpacked a second time
    from edgekit.tflite import heads
    from edgekit.tflite.graph_edit import GraphEditor

    try:
        editor = GraphEditor.from_bytes(model_bytes)
    except ImportError:
        # The contract is read through LiteRT's schema, which ai-edge-litert brings; where it is missing
        # (Windows, see pyproject.toml) no compiler runs either, and the head is predicted like any other ops.
        return None
    try:
        head = heads.read_imprinting_head(editor, model.path)
    except heads.NotImprintingModel:
        return None
    name = editor.graph.tensors[head.l2norm_input].name
    return LearningHead(IMPRINTING, name.decode("utf-8") if isinstance(name, bytes) else name,
                        tuple(range(head.l2norm, head.softmax + 1)))


def learning_head_in_file(model):
    """`learning_head` of a model read from its file (`model.path`)."""
    if not any(op.name == "L2_NORMALIZATION" for op in model.main.operators):
        return None
    with open(model.path, "rb") as f:
        return learning_head(model, f.read())


def predict(model, min_runtime=rules.DEFAULT_RUNTIME, multiple_subgraphs=False, head=None):
    """The `Prediction` for `model`. head: its `LearningHead` (see `learning_head`), whose ops are left on the CPU
    as `edgekit compile` leaves them, or None."""
    graph = model.main
    fatal = fatal_problem(model)
    verdicts, cut = partition(graph, min_runtime, multiple_subgraphs)
    if head is not None:
        verdicts = [_kept_on_cpu(v, head) if v.index in head.ops else v for v in verdicts]
    float_ops = [v for v in verdicts if v.reason == rules.DATA_TYPE and "float" in v.detail]
    if fatal is None and float_ops and not any(t.type in rules.EIGHT_BIT for t in graph.tensors):
        names = _counted(v.op for v in float_ops)
        fatal = Fatal("not_quantized", f"model not quantized: {len(float_ops)} ops work on float ({names})",
                      None, QUANTIZE_FIX)
    scores = class_scores(graph, verdicts)
    if scores is not None and scores.cpu_ops:
        verdicts = [_with_class_count(v, scores) if v.index in scores.cpu_ops else v for v in verdicts]
        cut = {v.index: v for v in verdicts}[cut.index] if cut is not None else None
    total, cached, streamed = parameter_split(graph, verdicts)
    prediction = Prediction(path=model.path, ops=verdicts, cut=cut, fatal=fatal, float_ops=float_ops,
                            parameter_bytes=total, cached_bytes=cached, streamed_bytes=streamed, fixes=[],
                            min_runtime=min_runtime, multiple_subgraphs=multiple_subgraphs, class_scores=scores,
                            learning_head=head,
                            edgetpus=edgetpu_count(model.path, graph, op_parameter_bytes(graph, verdicts)))
    return prediction._replace(fixes=fixes(graph, prediction))


def _kept_on_cpu(verdict, head):
    """A learning head's op as the compiler reports an op past --intermediate_tensors: not mapped, with the
    status it gives ops left outside its one Edge TPU subgraph (google-coral/edgetpu#601)."""
    return verdict._replace(status="cpu", reason=rules.MORE_THAN_ONE_SUBGRAPH,
                            detail=f"the {head.kind} head, on the CPU on purpose: the Edge TPU part ends at "
                                   f"'{head.tensor}' {IMPRINTING_HEAD_WHY}")


def unintended_cpu_ops(prediction):
    """The verdicts of ops predicted on the CPU, less a learning head's, which is there on purpose."""
    planned = set(prediction.learning_head.ops) if prediction.learning_head is not None else set()
    return [v for v in prediction.ops if v.status == "cpu" and v.index not in planned]


def learning_head_text(prediction):
    """One line on the learning head left on the CPU on purpose, or None when the model has none."""
    head = prediction.learning_head
    if head is None:
        return None
    names = " -> ".join(v.op for v in prediction.ops if v.index in head.ops)
    return (f"{head.kind} head: ops {head.ops[0]}-{head.ops[-1]} ({names}) stay on the CPU on purpose: "
            f"`edgekit compile` ends the Edge TPU part at '{head.tensor}' (--intermediate_tensors) "
            f"{IMPRINTING_HEAD_WHY}")


QUANTIZE_FIX = ("convert with full-integer quantization (optimizations=[tf.lite.Optimize.DEFAULT], a "
                "representative_dataset, supported_ops=[tf.lite.OpsSet.TFLITE_BUILTINS_INT8], "
                "inference_input_type/inference_output_type=tf.uint8)")


def version_problems(model):
    """[(op, newest version compiler 16 parses)] for every builtin op newer than that, in execution order."""
    found = []
    for op in model.operators():
        if not op.is_custom:
            newest = rules.max_version(op.name)
            if op.version > newest:
                found.append((op, newest))
    return found


def known_versions_text(newest):
    """How the compiler knows an op: "up to version N", or "not at all"."""
    return f"up to version {newest}" if newest else "not at all"


def fatal_problem(model):
    """Problems that stop the whole compile: unparseable op versions, dynamic shapes."""
    too_new = version_problems(model)
    if too_new:
        op, newest = too_new[0]
        return Fatal("version",
                     f"op {op.index} {op.name} is version {op.version}, but compiler 16 knows it "
                     f"{known_versions_text(newest)}",
                     f"Didn't find op for builtin opcode '{op.name}' version '{op.version}' ... {rules.FATAL_PARSE}",
                     "re-convert with TensorFlow 2.5 (or avoid the feature that needs the newer version)")
    for t in model.main.tensors:
        if t.is_dynamic:
            return Fatal("dynamic", f"tensor '{t.name}' has a dynamic shape {list(t.shape_signature)}",
                         rules.FATAL_DYNAMIC,
                         "fix the batch to 1: convert from a model with a static input shape like [1, H, W, 3]")
    return None


def judge(graph, op, runtime):
    """An op on its own merits: None when it can map, else a rules.Problem."""
    rule = None if op.is_custom else rules.SUPPORTED.get(op.name)
    if rule is None:
        hint = rules.ALTERNATIVES.get(op.name)
        return rules.Problem(rules.NOT_SUPPORTED, hint or f"{op.name} has no Edge TPU implementation")
    if rule.runtime > runtime:
        return rules.Problem(rules.NOT_SUPPORTED, f"needs Edge TPU runtime {rule.runtime} (-m {rule.runtime})")
    problem = data_type_problem(graph, op) or rank_problem(graph, op)
    for limit in rule.limits:
        problem = problem or limit(graph, op, runtime)
    return problem or rules.oversized_row(graph, op, runtime)


def data_type_problem(graph, op):
    wide = rules.WIDE_STATE_OPS.get(op.name, ())
    # QUANTIZE exists to take other types in; its own rule decides about its input.
    reads = op.inputs[1:] if op.name == "QUANTIZE" else op.inputs
    for i in [i for i in reads + op.outputs if i >= 0]:
        t = graph.tensors[i]
        allowed = rules.EIGHT_BIT + (("INT32",) if t.is_constant else wide)
        if t.type not in allowed:
            what = "float" if t.type.startswith(("FLOAT", "BFLOAT")) else t.type.lower()
            return rules.Problem(rules.DATA_TYPE, f"tensor '{t.name}' is {what} ({t.type}), not 8-bit")
    return None


def rank_problem(graph, op):
    for t in rules.activations(graph, op):
        if any(d > 1 for d in t.shape[:-3]):
            return rules.Problem(rules.RANK, f"tensor '{t.name}' {list(t.shape)} has more than 3 dimensions > 1")
    return None


def partition(graph, runtime, multiple_subgraphs):
    """Apply the data-flow rule. Returns (verdicts in execution order, the verdict of the op that cut)."""
    producer = graph.producers()
    front, mapped, verdicts, cut = set(), set(), [], None
    for op in graph.operators:
        problem = judge(graph, op, runtime)
        reads = [i for i in op.inputs if i >= 0 and not graph.tensors[i].is_constant and i in producer]
        if problem is not None:
            verdict = OpVerdict(op.index, op.name, op.version, "cpu", problem.status, problem.detail)
            if all(i in front for i in reads):
                front.update(op.outputs)        # still ahead of the Edge TPU region
            elif cut is None:
                cut = verdict
        elif multiple_subgraphs or all(i in mapped or i in front for i in reads):
            verdict = OpVerdict(op.index, op.name, op.version, "tpu", rules.MAPPED, "")
            mapped.update(op.outputs)
        else:
            first = cut.index if cut else "?"
            verdict = OpVerdict(op.index, op.name, op.version, "cpu", rules.MORE_THAN_ONE_SUBGRAPH,
                                f"downstream of op {first}, which runs on the CPU")
        verdicts.append(verdict)
    return verdicts, cut


def class_scores(graph, verdicts):
    """The ClassScores of a detector ending in TFLite_Detection_PostProcess, or None for any other model.

    The class-score ops are those that write a tensor of the scores' depth on the way to the op's scores
    input: DEQUANTIZE, LOGISTIC, the CONCATENATION of the levels and each level's RESHAPE; the walk stops at
    the head's convolution, whose depth is anchors per cell times classes."""
    post = next((op for op in graph.operators if op.is_custom and op.name == DETECTION_POSTPROCESS_OP), None)
    scores = rules.arg(graph, post, 1) if post is not None else None
    if scores is None or len(scores.shape) < 2:
        return None
    anchors, classes = int(scores.shape[-2]), int(scores.shape[-1])
    producer = graph.producers()
    path, todo = set(), [post.inputs[1]]
    while todo:
        index = todo.pop()
        op = graph.operators[producer[index]] if index in producer else None
        if op is None or op.index in path:
            continue
        path.add(op.index)
        todo += [i for i in op.inputs if i >= 0 and not graph.tensors[i].is_constant
                 and graph.tensors[i].shape and graph.tensors[i].shape[-1] == classes]
    cpu = sorted(v.index for v in verdicts
                 if v.index in path and v.status == "cpu" and v.detail == _row_detail(graph, v))
    return ClassScores(scores.name, classes, anchors, anchors * classes, rules.most_classes(max(anchors, 1)), cpu)


def _row_detail(graph, verdict):
    """The oversized-row problem's detail of the verdict's op ("" when its rows fit)."""
    problem = rules.oversized_row(graph, graph.operators[verdict.index])
    return problem.detail if problem else ""


def _with_class_count(verdict, scores):
    """The verdict of a class-score op too large to map, its detail saying that the class count is why."""
    return verdict._replace(detail=f"{scores.classes} classes x {scores.anchors:,} anchors: {verdict.detail} "
                                   f"({_classes_that_fit(scores.most_classes)})")


def _classes_that_fit(most):
    """How many classes keep the class scores on the Edge TPU at this anchor count, in words."""
    if most < 1:
        return "no class count fits this many anchors"
    return f"at most {most} class{'es' if most > 1 else ''} fit at this input size"


def _remedy(most):
    """What keeps the class scores on the Edge TPU: fewer classes, or fewer anchors when no count fits."""
    if most < 1:
        return "use a smaller input size, which has fewer anchors (no class count fits this many)"
    return f"train fewer classes ({_classes_that_fit(most)})"


def class_count_fix(graph, scores):
    """What to do when a detector's class count leaves its class-score ops on the CPU."""
    ops = ", ".join(f"{i} {graph.operators[i].name}" for i in scores.cpu_ops)
    return (f"the detector's {scores.classes} classes over {scores.anchors:,} anchors make its class scores "
            f"'{scores.tensor}' too large for the Edge TPU ({scores.values:,} values in one row, at most "
            f"{rules.ROW_MAX_VALUES:,} map), so {'ops' if len(scores.cpu_ops) > 1 else 'op'} {ops} "
            f"{'run' if len(scores.cpu_ops) > 1 else 'runs'} on the CPU: {_remedy(scores.most_classes)}, or accept "
            "these ops on the CPU (Coral's EfficientDet-Lite tutorial: more than 20 classes leave a layer off the "
            "Edge TPU)")


def class_count_advice(num_classes, anchors, model_name="the detector"):
    """Before training: a one-line warning when `num_classes` over `anchors` (the detector's anchor count, e.g.
    19206 for EfficientDet-Lite0 at 320) would leave class-score ops on the CPU, or None when they cost nothing.

    The same rule `check` applies to the exported model (rules.ROW_MAX_VALUES)."""
    for name, value in (("num_classes", num_classes), ("anchors", anchors)):
        if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < 1:
            raise EdgekitError(f"class count advice: {name} must be a whole number of at least 1, not {value!r}")
    num_classes, anchors = int(num_classes), int(anchors)
    most = rules.most_classes(anchors)
    if num_classes <= most:
        return None
    return (f"{num_classes} classes on {model_name} ({anchors:,} anchors) make class scores of "
            f"{num_classes * anchors:,} values in one row, more than the {rules.ROW_MAX_VALUES:,} the Edge TPU maps: "
            "the CONCATENATION and LOGISTIC that gather and squash them will run on the CPU, which is slower; "
            f"{_remedy(most)} to keep them on the Edge TPU, or accept those ops on the CPU")


def parameter_split(graph, verdicts):
    """(parameter bytes of mapped ops, predicted cached on chip, predicted streamed), each constant once."""
    tensors = {i for v in verdicts if v.status == "tpu" for i in graph.operators[v.index].inputs
               if i >= 0 and graph.tensors[i].is_constant}
    total = sum(len(graph.tensors[i].data) for i in tensors)
    cached = min(total, rules.ON_CHIP_CACHE_BYTES)
    return total, cached, total - cached


def op_parameter_bytes(graph, verdicts):
    """[(op index, parameter bytes)] of the ops predicted on the Edge TPU, in execution order: the bytes of the
    constants each op is the first mapped op to read (a constant two ops share is counted once, as
    `parameter_split` counts it)."""
    seen, rows = set(), []
    for v in verdicts:
        if v.status != "tpu":
            continue
        new = [i for i in graph.operators[v.index].inputs if i >= 0 and graph.tensors[i].is_constant and i not in seen]
        seen.update(new)
        rows.append((v.index, sum(len(graph.tensors[i].data) for i in new)))
    return rows


def segments_needed(sizes, cache_bytes=rules.ON_CHIP_CACHE_BYTES):
    """The fewest runs of consecutive `sizes` (bytes, in execution order) none of which holds more than
    `cache_bytes`, a size larger than that on its own counting as a run of its own. Filling each run as far as
    it goes is optimal for this (a later cut never lets fewer runs cover the rest), so when this many
    segments exist, so does the compiler's split of about equal parameter bytes into that many, each within
    the cache. At least 1."""
    count, filled = 1, 0
    for size in sizes:
        if filled and filled + size > cache_bytes:
            count, filled = count + 1, 0
        filled += size
    return count


def edgetpu_count(path, graph, op_bytes, cache_bytes=rules.ON_CHIP_CACHE_BYTES):
    """The `EdgeTpuCount` of the model at `path` (its `graph`), from `op_parameter_bytes`."""
    oversized = tuple(OversizedOp(index, graph.operators[index].name, size) for index, size in op_bytes
                      if size > cache_bytes)
    count = segments_needed([size for _, size in op_bytes], cache_bytes)
    return EdgeTpuCount(count, sum(size for _, size in op_bytes), cache_bytes, oversized,
                        segment_commands(path, count) if count > 1 else ())


def compiled_segment_names(path, count):
    """The files `edgekit compile MODEL --segments COUNT` writes: edgetpu_compiler's
    `<name>_segment_K_of_N_edgetpu.tflite`, K from 0 (Coral's compiler page, --num_segments)."""
    from edgekit.tflite.segments import segment_names

    return segment_names(os.path.splitext(os.path.basename(path))[0], count, suffix="_edgetpu.tflite")


def segment_commands(path, count):
    """What to type to compile the model at `path` into `count` segments, then run them over `count` Edge
    TPUs: (the compile command, the run command). The compiler writes the segments into the current folder."""
    devices = ",".join(f"usb:{k}" for k in range(count))
    return (f"edgekit compile {shlex.quote(str(path))} --segments {count}",
            f"edgekit run {' '.join(shlex.quote(n) for n in compiled_segment_names(path, count))} IMAGE... "
            f"--device {devices}")


def edgetpu_count_text(count):
    """What `check` says about the Edge TPUs an `EdgeTpuCount` asks for: one line, then the commands."""
    per_chip = f"~{cache_mib_text()} cached per Edge TPU"
    if count.count == 1:
        return [f"Edge TPUs to keep every parameter on chip: 1 ({format_bytes(count.parameter_bytes)} of "
                f"parameters, {per_chip})"]
    lines = [f"Edge TPUs to keep every parameter on chip: {count.count} ({format_bytes(count.parameter_bytes)} "
             f"of parameters, {per_chip}): compile it in {count.count} segments and run them pipelined, one per "
             f"Edge TPU (pci:0,pci:1,... for PCIe cards):"]
    lines += [f"  {command}" for command in count.commands]
    lines += [f"  op {o.index} {o.op} alone holds {format_bytes(o.parameter_bytes)} of parameters, more than one "
              "Edge TPU caches: it streams however many segments" for o in count.oversized]
    return lines


def fixes(graph, p):
    """Advice for the common cases, most useful first."""
    advice = []
    if p.float_ops:
        advice.append(f"{len(p.float_ops)} ops work on float ({_counted(v.op for v in p.float_ops)}): "
                      + QUANTIZE_FIX)
    if p.class_scores is not None and p.class_scores.cpu_ops:
        advice.append(class_count_fix(graph, p.class_scores))
    front_quantize = [v for v in p.ops if v.op == "QUANTIZE" and v.status == "cpu" and v.reason == rules.UNSPECIFIED]
    if front_quantize:
        advice.append("the input QUANTIZE runs on the CPU: convert with inference_input_type=tf.uint8 to drop it")
    if p.cut is not None:
        op = graph.operators[p.cut.index]
        # -i names tensors the Edge TPU part produces: the mapped ops' outputs that feed the cutting op.
        mapped = {t for v in p.ops if v.status == "tpu" for t in graph.operators[v.index].outputs}
        feeding = [graph.tensors[i].name for i in op.inputs if i in mapped]
        advice.append(f"op {p.cut.index} {p.cut.op} cuts the graph ({p.cut.detail})"
                      + (f"; {rules.ALTERNATIVES[p.cut.op]}" if p.cut.op in rules.ALTERNATIVES else "")
                      + (f"; to end the Edge TPU part there on purpose (e.g. before post-processing) compile "
                         f"with --intermediate {','.join(feeding)}" if feeding else ""))
        later = sum(v.reason == rules.MORE_THAN_ONE_SUBGRAPH for v in p.ops)
        if later:
            advice.append(f"{later} supported ops after the cut run on the CPU; compiling with multiple "
                          "subgraphs (-a, experimental, often slower) can map them")
    if any(v.op.startswith("RESIZE") and "align_corners" in v.detail for v in p.ops):
        advice.append("resize with align_corners=False and a whole-number scale factor to keep it on the Edge TPU")
    if any(v.reason == rules.RANK for v in p.ops):
        advice.append("keep the batch dimension 1 and at most 3 dimensions larger than 1 in every tensor")
    needs = [int(m.group(1)) for v in p.ops if (m := re.search(r"needs (?:Edge TPU )?runtime (\d+)", v.detail))]
    if needs:
        advice.append(f"raise --min-runtime to {max(needs)} (devices then need that libedgetpu or newer)")
    if p.streamed_bytes:
        count = p.edgetpus.count
        advice.append(f"{format_bytes(p.streamed_bytes)} of parameters do not fit the ~{cache_mib_text()} on-chip "
                      "cache and stream over USB/PCIe on every inference: use a smaller model, or compile it with "
                      f"--segments {count} and run the segments over {count} Edge TPUs, which keeps "
                      + ("every parameter on chip" if not p.edgetpus.oversized else "all but the largest ops' "
                         "parameters on chip"))
    return advice


def summary(p):
    tpu = sum(v.status == "tpu" for v in p.ops)
    return {"model": p.path, "ops": len(p.ops), "tpu": tpu, "cpu": len(p.ops) - tpu,
            "cpu_ops": dict(Counter(v.op for v in p.ops if v.status == "cpu")),
            "edgetpu_subgraphs": (1 if tpu else 0) if not p.multiple_subgraphs else None,
            "cut": p.cut._asdict() if p.cut else None,
            "float_ops": [v.index for v in p.float_ops], "min_runtime": p.min_runtime,
            "parameter_bytes": p.parameter_bytes, "cached_bytes": p.cached_bytes,
            "streamed_bytes": p.streamed_bytes, "fatal": p.fatal._asdict() if p.fatal else None,
            "class_scores": p.class_scores._asdict() if p.class_scores else None,
            "learning_head": dict(p.learning_head._asdict(), ops=list(p.learning_head.ops))
            if p.learning_head else None,
            "edgetpus": edgetpus_document(p.edgetpus)}


def edgetpus_document(count):
    """An `EdgeTpuCount` as JSON."""
    return {"count": count.count, "parameter_bytes": count.parameter_bytes, "cache_bytes": count.cache_bytes,
            "oversized_ops": [o._asdict() for o in count.oversized], "commands": list(count.commands)}


def to_document(p):
    return {"ops": [{"index": v.index, "op": v.op, "version": v.version, "status": v.status,
                     "reason": v.reason, "detail": v.detail} for v in p.ops],
            "summary": summary(p), "fixes": p.fixes}


def _counted(names):
    return ", ".join(f"{n} x{c}" if c > 1 else n for n, c in Counter(names).items())


def cache_mib_text():
    """The on-chip parameter cache as people read it: "6.9 MiB"."""
    return f"{rules.ON_CHIP_CACHE_BYTES / 2**20:.1f} MiB"


def format_bytes(n):
    """Bytes the way the compiler prints them: 7.02MiB, 80.00KiB, 0.00B."""
    if n is None:
        return "?"
    for unit, factor in (("MiB", 1 << 20), ("KiB", 1 << 10)):
        if n >= factor:
            return f"{n / factor:.2f}{unit}"
    return f"{n:.2f}B"

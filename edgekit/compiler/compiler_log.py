"""Parse what edgetpu_compiler prints (stdout) and writes (<name>_edgetpu.log), and compare with `check`.

The format is compiler 16's (its output and log are described at https://coral.ai/docs/edgetpu/compiler/):
a header with the version, one block of "Key: value" lines per input model, then optionally the per-op
table (always in the .log): `Operator` padded to 31 characters, `Count` to 11, then the status.
Co-compiling several models repeats the block per model. Unknown lines are ignored, so a chattier
compiler does not break the parser.
"""

import re
from collections import Counter, namedtuple

from edgekit.compiler import rules

OpRow = namedtuple("OpRow", "op count status")
ModelReport = namedtuple("ModelReport", "input_model output_model input_size output_size on_chip_used "
                                        "on_chip_remaining off_chip_streamed subgraphs total_ops tpu_ops cpu_ops "
                                        "log_file rows")
CompileReport = namedtuple("CompileReport", "version compiled compile_ms models fatal errors")
Fatal = namedtuple("Fatal", "message fix")
Disagreement = namedtuple("Disagreement", "op predicted_cpu compiler_cpu")

_FIELDS = {
    "Input model": "input_model", "Output model": "output_model", "Input size": "input_size",
    "Output size": "output_size", "On-chip memory used for caching model parameters": "on_chip_used",
    "On-chip memory remaining for caching model parameters": "on_chip_remaining",
    "Off-chip memory used for streaming uncached model parameters": "off_chip_streamed",
    "Number of Edge TPU subgraphs": "subgraphs", "Total number of operations": "total_ops",
    "Number of operations that will run on Edge TPU": "tpu_ops",
    "Number of operations that will run on CPU": "cpu_ops", "Operation log": "log_file",
    # the .log header names the files more briefly
    "Input": "input_model", "Output": "output_model",
}
_SIZES = {"B": 1, "KiB": 1 << 10, "MiB": 1 << 20, "GiB": 1 << 30}
_INTS = ("subgraphs", "total_ops", "tpu_ops", "cpu_ops")

# Statuses outside rules.STATUSES (a newer compiler's wording) are kept as they are and count as CPU.
# What to do about each fatal message, in the words a user can act on.
FATAL_FIXES = {
    rules.FATAL_PARSE: "an op version is newer than compiler 16 knows: run `edgekit check` to name it, and "
                       "re-convert with TensorFlow 2.5",
    rules.FATAL_INTERNAL: "retry with --search-delegate (maps a shorter prefix) or end the Edge TPU part earlier "
                          "with --intermediate",
    rules.FATAL_ACTIVATIONS: "retry with --search-delegate, use a smaller input size, or split with --segments",
    rules.FATAL_DYNAMIC: "fix the batch to 1: convert from a model with a static input shape [1, H, W, 3]",
}
GENERIC_FIX = "run `edgekit check` on the model to see which op the compiler cannot take"

_VERSION = re.compile(r"Edge TPU Compiler version (\S+)")
_COMPILED = re.compile(r"Model compiled successfully in (\d+) ms")
_ROW = re.compile(r"^(\S+)\s+(\d+)\s+(\S.*?)\s*$")


def parse_size(text):
    """'7.02MiB' -> bytes (int); None when it is not a size."""
    m = re.fullmatch(r"\s*([\d.]+)\s*(B|KiB|MiB|GiB)\s*", text)
    return round(float(m.group(1)) * _SIZES[m.group(2)]) if m else None


def parse_output(text):
    """A CompileReport from the compiler's stdout (plus stderr), or from a .log file's text."""
    version, compile_ms, fatal, errors = None, None, None, []
    models, current, in_table = [], None, False
    for raw in text.splitlines():
        line = raw.rstrip()
        if not line.strip():
            continue
        if in_table:
            row = _row(line)
            if row is not None:
                current["rows"].append(row)
                continue
            in_table = False        # the table ended; this line is something else
        if version is None and (m := _VERSION.search(line)):
            version = m.group(1)
            continue
        if m := _COMPILED.search(line):
            compile_ms = int(m.group(1))
            continue
        message = _fatal_in(line)
        if message and fatal is None:
            fatal = Fatal(message, FATAL_FIXES[message])
        if line.startswith("ERROR:") or "Compilation failed" in line:
            errors.append(line.strip())
            continue
        key, sep, value = line.partition(":")
        if sep and key.strip() in _FIELDS:
            field = _FIELDS[key.strip()]
            if field == "input_model" or current is None:
                current = _new_model()
                models.append(current)
            current[field] = _value(field, value.strip())
        elif line.startswith("Operator") and "Count" in line and "Status" in line:
            in_table = True
            if current is None:
                current = _new_model()
                models.append(current)
    if errors and fatal is None and any("Compilation failed" in e for e in errors):
        fatal = Fatal(errors[-1], GENERIC_FIX)
    return CompileReport(version=version, compiled=compile_ms is not None and fatal is None,
                         compile_ms=compile_ms, models=[ModelReport(**m) for m in models], fatal=fatal,
                         errors=errors)


def _fatal_in(line):
    for message in rules.FATAL_MESSAGES:
        if message in line:
            return message
    return None


def _new_model():
    model = dict.fromkeys(ModelReport._fields)
    model["rows"] = []
    return model


def _value(field, text):
    if field in _INTS:
        return int(text) if text.isdigit() else None
    if field.endswith(("_size", "_used", "_remaining", "_streamed")):
        return parse_size(text)
    return text


def _row(line):
    if rules.ALL_OTHERS_MAPPED in line:
        return OpRow(None, 0, rules.ALL_OTHERS_MAPPED)
    m = _ROW.match(line)
    if not m:
        return None
    return OpRow(m.group(1), int(m.group(2)), m.group(3))


def merge_log(report, log_text):
    """Give each model of a stdout report the full op table from its .log (stdout may fold or omit it)."""
    log = parse_output(log_text)
    if not log.models:
        return report
    rows = log.models[0].rows
    target = log.models[0].output_model
    models = [m._replace(rows=rows) if not target or _same_file(m.output_model, target) else m
              for m in report.models]
    if not report.models:
        models = log.models
    return report._replace(models=models)


def _same_file(a, b):
    return bool(a) and a.replace("\\", "/").rsplit("/", 1)[-1] == b.replace("\\", "/").rsplit("/", 1)[-1]


def compiler_cpu_ops(rows):
    """Counter of op name -> how many the compiler left on the CPU (a folded row adds none)."""
    counts = Counter()
    for r in rows:
        if r.op and r.status != rules.MAPPED:
            counts[r.op] += r.count
    return counts


def compare(rows, prediction):
    """Where the compiler's table and check's prediction disagree, op name by op name."""
    actual = compiler_cpu_ops(rows)
    predicted = Counter(v.op for v in prediction.ops if v.status == "cpu")
    return [Disagreement(op, predicted[op], actual[op]) for op in sorted(set(actual) | set(predicted))
            if predicted[op] != actual[op]]

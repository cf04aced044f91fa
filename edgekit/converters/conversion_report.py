"""The conversion report: `<name>_report.json` for machines and `<name>_report.html` (inline SVG plots) for
people. It answers "where does accuracy go": per-tensor float-vs-int8 error on calibration pictures, the
activation ranges each method chose, what the Edge TPU will run, and what took the time.
"""

import html
import json
import os
from collections import Counter

import numpy as np

from edgekit.calibration.ranges import tensor_reader
from edgekit.compiler import rules
from edgekit.converters.quantize import int8_batch
from edgekit.files import write_atomic
from edgekit.runtime.adapters import common

ERROR_SAMPLES = 8
AGREEMENT_SAMPLES = 100


def _int8_input(details, batch, mean, std):
    """The float batch as pixels again, fed the way the runtime feeds the int8 model."""
    pixels = np.clip(np.round(batch[0] * std + mean), 0, 255).astype(np.uint8)
    scale, zero_point = details["quantization"]
    return int8_batch(pixels, details["dtype"], scale, zero_point, mean, std)


def layer_errors(float_run, int8_run, batches, mean, std, samples=ERROR_SAMPLES):
    """Per activation tensor present in both models (matched by name): RMSE in units of the int8 scale,
    SNR in dB, over the first `samples` calibration inputs. The runs: `tensor_reader`s of the calibrated
    float model and of the int8 model."""
    float_by_name = {d["name"]: d["index"] for d in float_run.get_tensor_details()}
    pairs = []
    for d in int8_run.get_tensor_details():
        scales = d["quantization_parameters"]["scales"]
        if d["name"] in float_by_name and len(scales) == 1 and d["dtype"] in (np.int8, np.uint8):
            pairs.append((d, float_by_name[d["name"]]))
    sums = {d["index"]: [0.0, 0.0, 0] for d, _ in pairs}
    input_details = int8_run.get_input_details()[0]
    float_input = float_run.get_input_details()[0]["index"]
    for batch in batches[:samples]:
        float_run.set_tensor(float_input, batch)
        float_run.invoke()
        int8_run.set_tensor(input_details["index"], _int8_input(input_details, batch, mean, std))
        int8_run.invoke()
        for d, float_index in pairs:
            try:
                reference = float_run.get_tensor(float_index).astype(np.float64)
                values = common.dequantize(int8_run.get_tensor(d["index"]), *d["quantization"], dtype=np.float64)
            except ValueError:
                continue
            if reference.shape != values.shape:
                continue
            s = sums[d["index"]]
            s[0] += float(np.sum(reference ** 2))
            s[1] += float(np.sum((reference - values) ** 2))
            s[2] += reference.size
    rows = []
    for d, _ in pairs:
        signal, noise, count = sums[d["index"]]
        if not count:
            continue
        scale = float(d["quantization"][0])
        rmse = (noise / count) ** 0.5
        rows.append({"index": int(d["index"]), "name": d["name"], "scale": scale,
                     "rmse": rmse, "rmse_in_steps": rmse / scale if scale else None,
                     "snr_db": 10 * np.log10(signal / noise) if noise > 0 and signal > 0 else None})
    return rows


def logits_tensor(graph):
    """The tensor a classifier's SOFTMAX reads (its logits), or None."""
    softmax = [op for op in graph.operators if op.name == "SOFTMAX"]
    return graph.tensors[softmax[-1].inputs[0]] if softmax else None


def output_agreement(float_run, int8_run, int8_model, batches, mean, std, samples=AGREEMENT_SAMPLES):
    """A classifier's int8 output against the float one on calibration pictures: top-1 agreement, mean KL,
    and the pictures whose top two float logits lie closer than one step of the int8 logit tensor.

    Those last ones no calibration can save: the 8-bit head rounds their top two classes onto the same or
    neighbouring steps, so the int8 top-1 there is close to a coin toss. None for other models."""
    from edgekit.evaluation import metrics

    logits = logits_tensor(int8_model.main)
    outputs = int8_model.output_tensors()
    if logits is None or len(outputs) != 1 or outputs[0].shape[-1] < 2 or not logits.is_quantized:
        return None
    float_logits = next((d["index"] for d in float_run.get_tensor_details() if d["name"] == logits.name), None)
    float_input, float_output = float_run.get_input_details()[0], float_run.get_output_details()[0]
    int8_input, int8_output = int8_run.get_input_details()[0], int8_run.get_output_details()[0]
    out_scale, out_zero = int8_output["quantization"]
    step = logits.quantization.per_tensor[0]
    scores, reference, close = [], [], 0
    for batch in batches[:samples]:
        float_run.set_tensor(float_input["index"], batch)
        float_run.invoke()
        int8_run.set_tensor(int8_input["index"], _int8_input(int8_input, batch, mean, std))
        int8_run.invoke()
        reference.append(float_run.get_tensor(float_output["index"])[0].astype(np.float64))
        scores.append(common.dequantize(int8_run.get_tensor(int8_output["index"])[0], out_scale, out_zero))
        if float_logits is not None:
            top_two = np.sort(float_run.get_tensor(float_logits).reshape(-1))[-2:]
            close += int(top_two[1] - top_two[0] < step)
    found = metrics.agreement(np.array(scores), np.array(reference), out_scale / 2 if out_scale else 0.0)
    return {"pictures": found.count, "top1": found.top1, "mean_kl": found.mean_kl, "logit_step": float(step),
            "top2_logits_within_one_step": close if float_logits is not None else None}


def embedding_agreement(float_run, int8_run, batches, mean, std, samples=AGREEMENT_SAMPLES):
    """An embedding extractor's int8 embedding against the float one on calibration pictures: the cosine
    similarity of the two (mean and lowest) and the mean absolute difference in steps of the int8 grid. The
    int8 embedding is the int8 model's tensor named as the float model's output: the output itself, or what an
    imprinting head reads. None when the int8 model has no such tensor."""
    float_input, float_output = float_run.get_input_details()[0], float_run.get_output_details()[0]
    found = next((d for d in int8_run.get_tensor_details() if d["name"] == float_output["name"]), None)
    if found is None or not found["quantization"][0]:
        return None
    int8_input = int8_run.get_input_details()[0]
    step = float(found["quantization"][0])
    cosines, steps = [], []
    for batch in batches[:samples]:
        float_run.set_tensor(float_input["index"], batch)
        float_run.invoke()
        int8_run.set_tensor(int8_input["index"], _int8_input(int8_input, batch, mean, std))
        int8_run.invoke()
        reference = float_run.get_tensor(float_output["index"]).astype(np.float64).ravel()
        values = common.dequantize(int8_run.get_tensor(found["index"]), *found["quantization"],
                                   dtype=np.float64).ravel()
        norms = float(np.linalg.norm(reference) * np.linalg.norm(values))
        cosines.append(float(reference @ values) / norms if norms > 0 else 0.0)
        steps.append(float(np.mean(np.abs(reference - values))) / step)
    return {"pictures": len(cosines), "mean_cosine": float(np.mean(cosines)), "min_cosine": float(np.min(cosines)),
            "mean_error_steps": float(np.mean(steps)), "step": step}


def build(name, int8_model, calibrated, batches, recorded, edits, method, calibration, prediction, warnings,
          timings, compile_document, cache_hit, io, mean, std, float_path, int8_path, bias_corrected=False,
          learning=None):
    """The report document. `calibrated`: the calibrated float model's bytes; `recorded`: its calibrated
    ranges, `edits`: the ranges written instead; `io`, `mean`, `std`: the int8 model's I/O type and the
    normalisation its input quantization encodes; `timings`: seconds per step so far; learning: None, or the
    learning output (an embedding extractor, an imprinting model), whose float model is the extractor: its
    embedding is compared instead of classes."""
    from edgekit.compiler import check

    graph = int8_model.main
    verdicts = {v.index: v for v in prediction.ops}
    ops = []
    for op in graph.operators:
        v = verdicts.get(op.index)
        ops.append({"index": op.index, "op": op.name, "version": op.version,
                    "inputs": [graph.tensors[i].type for i in op.inputs if i >= 0],
                    "outputs": [graph.tensors[i].type for i in op.outputs if i >= 0],
                    "edgetpu": v.status if v else None, "reason": v.reason if v else None})
    with open(int8_path, "rb") as f:
        # The file as written (metadata included): the model users will run.
        int8_run = tensor_reader(f.read())
    float_run = tensor_reader(calibrated)  # both built once: each costs a model load and tensor allocation
    errors = layer_errors(float_run, int8_run, batches, mean, std)
    agreement = None if learning else output_agreement(float_run, int8_run, int8_model, batches, mean, std)
    embedding = embedding_agreement(float_run, int8_run, batches, mean, std) if learning else None
    activation_ranges = []
    for index, r in sorted(recorded.items()):
        chosen = edits.get(index, (r.low, r.high))
        activation_ranges.append({"index": index, "name": r.name, "min": r.low, "max": r.high,
                                  "chosen": [float(chosen[0]), float(chosen[1])]})
    return {"name": name, "files": {"int8": int8_path, "float": float_path},
            "method": method, "bias_correction": bool(bias_corrected), "statistics_cached": cache_hit,
            "io": io,
            "normalization": {"mean": mean, "std": std},
            "input": _tensor_doc(int8_model.input_tensors()[0]),
            "outputs": [_tensor_doc(t) for t in int8_model.output_tensors()],
            "op_counts": dict(Counter(op.name for op in graph.operators)),
            "ops": ops, "edgetpu": check.summary(prediction),
            "parameters": {"bytes": prediction.parameter_bytes, "on_chip_cache_bytes": rules.ON_CHIP_CACHE_BYTES,
                           "fits": prediction.parameter_bytes <= rules.ON_CHIP_CACHE_BYTES},
            "agreement_with_float": agreement, "embedding_agreement": embedding, "layer_errors": errors,
            "activation_ranges": activation_ranges,
            "calibration": calibration,
            "warnings": warnings, "compile": compile_document,
            "timings_s": {k: round(v, 3) for k, v in timings.items()}}


def _tensor_doc(t):
    scale, zero_point = t.quantization.per_tensor
    return {"name": t.name, "type": t.type, "shape": list(t.shape), "scale": scale, "zero_point": zero_point}


# --- HTML with hand-written SVG plots ------------------------------------------------------------------

def _svg_ranges(rows, width=720):
    """One row per activation: the calibrated [min, max] in grey, the range used in blue, on a symmetric
    log-like axis (sign(x) * log10(1 + |x|)) so tiny and huge ranges both show."""
    if not rows:
        return ""
    squash = lambda x: float(np.sign(x) * np.log10(1 + abs(x)))   # noqa: E731
    extent = max(max(abs(squash(r["min"])), abs(squash(r["max"]))) for r in rows) or 1.0
    row_h, left = 6, 60
    x = lambda v: left + (squash(v) / extent + 1) / 2 * (width - left - 10)   # noqa: E731
    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{len(rows) * row_h + 30}">',
             f'<line x1="{x(0):.1f}" y1="0" x2="{x(0):.1f}" y2="{len(rows) * row_h}" stroke="#999"/>']
    for k, r in enumerate(rows):
        y = k * row_h
        parts.append(f'<rect x="{x(r["min"]):.1f}" y="{y}" width="{max(x(r["max"]) - x(r["min"]), 1):.1f}" '
                     f'height="{row_h - 1}" fill="#ccc"><title>{html.escape(r["name"])}: '
                     f'[{r["min"]:.4g}, {r["max"]:.4g}] used [{r["chosen"][0]:.4g}, {r["chosen"][1]:.4g}]'
                     '</title></rect>')
        lo, hi = r["chosen"]
        parts.append(f'<rect x="{x(lo):.1f}" y="{y + 1}" width="{max(x(hi) - x(lo), 1):.1f}" height="{row_h - 3}" '
                     f'fill="#3b6fb6"/>')
    bottom = len(rows) * row_h + 20
    for v in (-extent, 0, extent):
        real = float(np.sign(v) * (10 ** abs(v) - 1))
        xv = left + (v / extent + 1) / 2 * (width - left - 10)
        parts.append(f'<text x="{xv:.1f}" y="{bottom}" font-size="10" text-anchor="middle">{real:.3g}</text>')
    parts.append("</svg>")
    return "".join(parts)


def _svg_snr(rows, width=720, height=200):
    values = [(r["snr_db"] if r["snr_db"] is not None else 60.0) for r in rows]
    if not values:
        return ""
    top = max(60.0, max(values))
    left, bottom = 40, height - 20
    step = (width - left - 10) / max(len(values) - 1, 1)
    y = lambda v: bottom - max(v, 0) / top * (bottom - 10)   # noqa: E731
    points = " ".join(f"{left + k * step:.1f},{y(v):.1f}" for k, v in enumerate(values))
    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}">',
             f'<polyline points="{points}" fill="none" stroke="#3b6fb6" stroke-width="1.5"/>']
    for k, (r, v) in enumerate(zip(rows, values)):
        parts.append(f'<circle cx="{left + k * step:.1f}" cy="{y(v):.1f}" r="2" fill="#3b6fb6"><title>'
                     f'{html.escape(r["name"])}: SNR {v:.1f} dB, RMSE {r["rmse_in_steps"] or 0:.2f} steps'
                     '</title></circle>')
    for v in (0, 20, 40, top):
        parts.append(f'<text x="{left - 4}" y="{y(v) + 3:.1f}" font-size="10" text-anchor="end">{v:.0f}</text>')
    parts.append(f'<text x="{width / 2}" y="{height - 4}" font-size="10" text-anchor="middle">tensor, in '
                 'execution order (dB; lower = more int8 error)</text></svg>')
    return "".join(parts)


def _short(tensor_name):
    """A fused op's tensor name lists every op folded into it ("a;b;c"): the first says which layer it is."""
    return tensor_name.split(";")[0]


def _table(header, rows):
    head = "".join(f"<th>{html.escape(str(h))}</th>" for h in header)
    body = "".join("<tr>" + "".join(f"<td>{html.escape(str(c))}</td>" for c in row) + "</tr>" for row in rows)
    return f"<table><tr>{head}</tr>{body}</table>"


def _agreement_html(found, name):
    if not found:
        return ""
    command = f"edgekit eval {name}_int8.tflite --data DIR --reference {name}_float.tflite"
    text = (f"<h2>Agreement with the float model</h2><p>On {found['pictures']} calibration pictures the int8 "
            f"model's top-1 class is the float model's on {100 * found['top1']:.1f}%, mean KL divergence "
            f"{found['mean_kl']:.4f} nats. Calibration pictures flatter a little: check held-out pictures with "
            f"<code>{html.escape(command)}</code> (the float model comes with <code>--float</code>).")
    if found["top2_logits_within_one_step"] is not None:
        text += (f" On {found['top2_logits_within_one_step']} of them the float model's top two logits lie "
                 f"within one step ({found['logit_step']:.4g}) of the int8 logits: there the 8-bit head cannot "
                 "keep them apart, whatever the calibration.")
    return text + "</p>"


def _embedding_html(found):
    if not found:
        return ""
    return (f"<h2>Embedding against the float model</h2><p>On {found['pictures']} calibration pictures the int8 "
            f"embedding's cosine similarity to the float one is {found['mean_cosine']:.4f} on average (lowest "
            f"{found['min_cosine']:.4f}); the values differ by {found['mean_error_steps']:.2f} steps of the int8 "
            f"grid ({found['step']:.4g}) on average.</p>")


def _cpu_ops_html(cpu_ops):
    """': OP xN, ...' for the ops that stay on the CPU, or nothing when none does."""
    return ": " + html.escape(", ".join(f"{op} x{n}" for op, n in sorted(cpu_ops.items()))) if cpu_ops else ""


def to_html(doc):
    e = doc["edgetpu"]
    worst = sorted([r for r in doc["layer_errors"] if r["snr_db"] is not None], key=lambda r: r["snr_db"])[:10]
    cal = doc["calibration"]
    sections = [
        f"<h1>{html.escape(doc['name'])}: int8 conversion report</h1>",
        f"<p>Calibration method <b>{html.escape(doc['method'])}"
        f"{' + bias correction' if doc.get('bias_correction') else ''}</b>, I/O {doc['io']}, input "
        f"{html.escape(str(doc['input']['shape']))} {doc['input']['type']} scale {doc['input']['scale']:.6g} "
        "zero point "
        f"{doc['input']['zero_point']}.</p>",
        "<h2>Warnings</h2>" + ("<ul>" + "".join(f"<li>{html.escape(w)}</li>" for w in doc["warnings"]) + "</ul>"
                               if doc["warnings"] else "<p>none</p>"),
        "<h2>Edge TPU (predicted)</h2>"
        f"<p>{e['tpu']} of {e['ops']} ops on the Edge TPU, {e['cpu']} on the CPU"
        f"{_cpu_ops_html(e['cpu_ops'])}. "
        f"Parameters {doc['parameters']['bytes'] / 2**20:.2f} MiB of about "
        f"{doc['parameters']['on_chip_cache_bytes'] / 2**20:.2f} MiB on-chip cache "
        f"({'fits' if doc['parameters']['fits'] else 'does not fit: the rest streams every inference'}).</p>",
        _agreement_html(doc.get("agreement_with_float"), doc["name"]),
        _embedding_html(doc.get("embedding_agreement")),
        "<h2>Where accuracy goes: float vs int8 per tensor</h2>",
        _svg_snr(doc["layer_errors"]),
        "<p>Worst tensors:</p>" + _table(("tensor", "SNR dB", "RMSE (int8 steps)", "scale"),
                                         [(_short(r["name"]), f"{r['snr_db']:.1f}", f"{r['rmse_in_steps']:.2f}",
                                           f"{r['scale']:.4g}") for r in worst]),
        "<h2>Activation ranges (grey: calibrated min/max, blue: used)</h2>", _svg_ranges(doc["activation_ranges"]),
        "<h2>Calibration set</h2>"
        f"<p>{cal['used']} of {cal['requested']} requested images from {html.escape(str(cal['source']))} "
        f"({cal['kind']}, {cal['candidates']} candidates, {cal['skipped']} skipped), strata "
        f"{html.escape(str(cal['strata']))}, mean pixel {cal['pixel_mean']}.</p>",
        "<h2>Ops</h2>" + _table(("#", "op", "version", "inputs", "outputs", "Edge TPU", "reason"),
                                [(o["index"], o["op"], o["version"], " ".join(o["inputs"]), " ".join(o["outputs"]),
                                  o["edgetpu"], o["reason"]) for o in doc["ops"]]),
        "<h2>Timings (s)</h2>" + _table(("step", "seconds"), sorted(doc["timings_s"].items())),
    ]
    style = ("<style>body{font-family:sans-serif;max-width:980px;margin:2em auto}table{border-collapse:collapse;"
             "font-size:12px}td,th{border:1px solid #ddd;padding:2px 6px;overflow-wrap:anywhere}</style>")
    return f"<!doctype html><html><head><meta charset='utf-8'><title>{html.escape(doc['name'])}</title>{style}" \
           f"</head><body>{''.join(sections)}</body></html>"


def write(out_dir, name, doc):
    json_path = write_atomic(os.path.join(out_dir, f"{name}_report.json"),
                             json.dumps(doc, indent=2, default=_default))
    html_path = write_atomic(os.path.join(out_dir, f"{name}_report.html"), to_html(doc))
    return json_path, html_path


def _default(value):
    if hasattr(value, "tolist"):
        return value.tolist()
    return str(value)

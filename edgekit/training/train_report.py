"""The training report: `train_report.json` (the trainer's document as plain JSON) for machines and
`train_report.html` for people.

The HTML is one self-contained file: every picture is inline as a data: URI (RFC 2397; PNG for charts, JPEG
for thumbnails), so it can be mailed or archived and still shows everything. Pillow, numpy and the standard
library only (no TensorFlow), so a report can be drawn again from its JSON on any machine. Every optional part
of the document may be missing; every string from the user (labels, file names) is escaped.
"""

import base64
import html
import io
import json
import math
import os
from collections import namedtuple

import numpy as np

from edgekit.compiler.rules import ON_CHIP_CACHE_BYTES
from edgekit.errors import EdgekitError
from edgekit.files import write_atomic
from edgekit.training import charts

JSON_NAME = "train_report.json"
HTML_NAME = "train_report.html"
# Caps on what the HTML lists, so a badly trained model on a large test set still gives a page a browser
# opens quickly; the JSON keeps everything.
MAX_THUMBNAILS = 60
MAX_SKIPPED_ROWS = 100
MAX_LISTED_LABELS = 30
JPEG_QUALITY = 85
# The order the two test models are shown in: the int8 model is the one that ships.
MODEL_ORDER = ("ensemble", "int8", "float")
RECIPE_ORDER = ("mode", "epochs", "batch_size", "learning_rate", "optimizer", "augment", "label_smoothing",
                "dropout", "class_weights", "seed", "input_size")
# Recipe settings whose value is a dict shown on one line; any other dict is a phase's settings, one row each.
INLINE_SETTINGS = ("class_weights",)

ReportFiles = namedtuple("ReportFiles", "json_path html_path")


# --- the document as plain JSON -------------------------------------------------------------------------

def plain(value):
    """`value` with numpy arrays and scalars, tuples and paths turned into JSON's types, and NaN / infinity
    into None (JSON has no NaN, and a diverged run logs it)."""
    if isinstance(value, dict):
        return {k if isinstance(k, str) else str(plain(k)): plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [plain(v) for v in value]
    if isinstance(value, np.ndarray):
        return plain(value.tolist())
    if isinstance(value, np.generic):
        return plain(value.item())
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if value is None or isinstance(value, (str, bool, int)):
        return value
    if isinstance(value, os.PathLike):
        return os.fspath(value)
    if isinstance(value, (set, frozenset)):
        return sorted(plain(v) for v in value)
    return str(value)


def data_uri(image, image_format="PNG"):
    """A PIL image as a data: URI (PNG or JPEG)."""
    buffer = io.BytesIO()
    if image_format == "JPEG":
        image.convert("RGB").save(buffer, format="JPEG", quality=JPEG_QUALITY)
    else:
        image.save(buffer, format=image_format, optimize=True)
    mime = "image/jpeg" if image_format == "JPEG" else f"image/{image_format.lower()}"
    return f"data:{mime};base64,{base64.b64encode(buffer.getvalue()).decode('ascii')}"


# --- formatting -----------------------------------------------------------------------------------------

def percent(fraction):
    """0.912 -> "91.2%"; "n/a" for a missing value."""
    return f"{100 * fraction:.1f}%" if isinstance(fraction, (int, float)) and not isinstance(fraction, bool) \
        else "n/a"


def number(value, digits=3):
    """A figure as people read it: `digits` significant digits for a float, "n/a" for a missing value."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return "n/a" if value is None else str(value)
    return f"{value:.{digits}g}" if isinstance(value, float) else str(value)


def _setting(value):
    """A recipe value as people read it."""
    if value is None:
        return "none"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, dict):
        return ", ".join(f"{k} {number(v)}" for k, v in value.items()) or "none"
    if isinstance(value, list):
        return " x ".join(str(v) for v in value)
    return number(value, 4)


def _mib(size):
    return f"{size / 2 ** 20:.2f} MiB" if isinstance(size, (int, float)) else "n/a"


def escape(value):
    """Any value as HTML text."""
    return html.escape(str(value))


def table(header, rows, css_class=""):
    """An HTML table of plain-text cells (each escaped)."""
    head = "".join(f"<th>{escape(h)}</th>" for h in header)
    body = "".join("<tr>" + "".join(f"<td>{escape(c)}</td>" for c in row) + "</tr>" for row in rows)
    attribute = f" class='{css_class}'" if css_class else ""
    return f"<table{attribute}><tr>{head}</tr>{body}</table>"


def inline_picture(image, alt, image_format="PNG"):
    """An <img> holding the PIL `image` itself (a data: URI), at its own width."""
    return f"<img src='{data_uri(image, image_format)}' alt='{escape(alt)}' width='{image.width}'>"


# --- what the document holds ----------------------------------------------------------------------------

def tested_models(document):
    """{"int8": scores, "float": scores} of the test metrics present, int8 first."""
    return ordered_models(((document.get("metrics") or {}).get("test")) or {})


def ordered_models(test):
    """{model name: scores} of a {model name: scores} dict, in `MODEL_ORDER` (the int8 model first), only the
    models whose scores are a dict."""
    return {name: test[name] for name in MODEL_ORDER if isinstance(test.get(name), dict)}


def class_names(document):
    """The labels, or (for a document without them) the classes its data counts name."""
    labels = document.get("labels")
    if labels:
        return [str(name) for name in labels]
    return [str(name) for name in ((document.get("data") or {}).get("per_class") or {})]


def confusions_to_show(document):
    """[(model name, matrix)]: the int8 model's, and the float model's when it differs (or is the only one)."""
    shown = []
    for name, scores in tested_models(document).items():
        matrix = scores.get("confusion")
        if matrix is None:
            continue
        if any(np.array_equal(np.asarray(matrix), np.asarray(other)) for _, other in shown):
            continue
        shown.append((name, matrix))
    return shown


def misclassified_caption(item, with_model=False):
    """"cat -> dog (0.70)", and the model ("[int8]") when the list mixes models."""
    score = item.get("score")
    text = f"{item.get('label', '?')} -> {item.get('predicted', '?')}"
    if isinstance(score, (int, float)) and not isinstance(score, bool):
        text += f" ({score:.2f})"
    if with_model and item.get("model"):
        text += f" [{item['model']}]"
    return text


def misclassified_to_show(document, most=MAX_THUMBNAILS):
    """The misclassified test pictures the HTML shows: the most confident mistakes first, at most `most`.

    Confident disagreement with the given label is the usual first sign of a mislabelled picture (Northcutt,
    Jiang and Chuang, "Confident Learning: Estimating Uncertainty in Dataset Labels", JAIR 2021), so those
    are the ones worth a look."""
    items = [item for item in (document.get("misclassified") or ()) if isinstance(item, dict)]

    def confidence(item):
        score = item.get("score")
        return -score if isinstance(score, (int, float)) and not isinstance(score, bool) else math.inf

    return sorted(items, key=confidence)[:most]


# --- sections -------------------------------------------------------------------------------------------

def _summary(document):
    labels = class_names(document)
    listed = listed_names(labels)
    metrics = document.get("metrics") or {}
    models = tested_models(document)
    accuracy_header = ["", "validation"] + [f"test, {name}" for name in models]
    accuracy_row = ["accuracy", percent((metrics.get("val") or {}).get("accuracy"))]
    accuracy_row += [percent(scores.get("accuracy")) for scores in models.values()]
    parts = [f"<h1>{escape(document.get('model', 'model'))}: training report</h1>",
             f"<p>Task {escape(document.get('task', 'classification'))}, {len(labels)} classes: {escape(listed)}.</p>",
             table(accuracy_header, [accuracy_row], "summary")]
    float_accuracy = (models.get("float") or {}).get("accuracy")
    int8_accuracy = (models.get("int8") or {}).get("accuracy")
    if isinstance(float_accuracy, (int, float)) and isinstance(int8_accuracy, (int, float)):
        parts.append(f"<p>{escape(_int8_against_float(int8_accuracy, float_accuracy))}</p>")
    refit = document.get("head_fitted_to_int8")
    if isinstance(refit, dict) and refit.get("before") and refit.get("after"):
        parts.append(f"<p>{escape(_refit_text(refit))}</p>")
    parts.append(deployment_section(document))
    return "".join(parts)


def deployment_section(document):
    """The summary's end: the Edge TPU mapping and compile outcome, then the table of files."""
    return (f"<p>Edge TPU: {edgetpu_text(document.get('edgetpu'))} {compile_text(document.get('compile'))}</p>"
            + files_table(document.get("files")))


def files_table(files):
    """The table of files the run wrote ("not written" for those it did not), or nothing."""
    if not files:
        return ""
    return table(("file", "path"), [(name, path if path else "not written") for name, path in files.items()])


def listed_names(names):
    """"a, b, c": the first `MAX_LISTED_LABELS` names, and how many more there are."""
    more = len(names) - MAX_LISTED_LABELS
    return ", ".join(str(name) for name in names[:MAX_LISTED_LABELS]) + (f" and {more} more" if more > 0 else "")


def _refit_text(refit):
    """One sentence on the head fitted to the int8 backbone's features (`training.int8_head`)."""
    (loss_before, accuracy_before), (loss_after, accuracy_after) = refit["before"][:2], refit["after"][:2]
    verdict = ("kept, and the model converted again" if refit.get("kept")
               else "not kept: it did not lower the validation loss")
    return (f"After conversion the head was fitted to the int8 backbone's features for {refit.get('epochs', 0)} "
            f"epochs: validation loss {loss_before:.4f} -> {loss_after:.4f}, accuracy {percent(accuracy_before)} "
            f"-> {percent(accuracy_after)} on those features ({verdict}).")


def _int8_against_float(int8_accuracy, float_accuracy):
    points = round(100 * (int8_accuracy - float_accuracy), 1)
    if points == 0:
        return "The int8 model's test accuracy is the float model's."
    side = "above" if points > 0 else "below"
    return f"The int8 model's test accuracy is {abs(points):.1f} points {side} the float model's."


def edgetpu_text(mapping):
    """One escaped sentence from edgekit's offline check of the int8 model (`compiler.check.summary`): ops on
    the Edge TPU, those left to the CPU, and the parameters against the on-chip cache."""
    if not mapping:
        return "not checked."
    ops, tpu = mapping.get("ops"), mapping.get("tpu")
    cpu_ops = mapping.get("cpu_ops") or {}
    fatal = mapping.get("fatal")
    if isinstance(fatal, dict) and fatal.get("message"):
        return escape(f"edgetpu_compiler would refuse this model: {fatal['message']}; {fatal.get('fix', '')}".strip())
    text = f"{number(tpu)} of {number(ops)} ops run on the Edge TPU (predicted)"
    if cpu_ops:
        text += "; on the CPU: " + ", ".join(f"{op} x{n}" for op, n in sorted(cpu_ops.items()))
    size = mapping.get("parameter_bytes")
    if isinstance(size, (int, float)):
        fits = size <= ON_CHIP_CACHE_BYTES
        text += (f". Parameters {_mib(size)} of about {_mib(ON_CHIP_CACHE_BYTES)} on-chip cache ("
                 + ("fits" if fits else "does not fit: the rest streams from host memory on every inference")
                 + ")")
    return escape(text + ".")


def compile_text(compiled):
    """One escaped sentence on what edgetpu_compiler did (the converter's compile document), or nothing."""
    if not isinstance(compiled, dict):
        return ""
    if not compiled.get("ran"):
        return escape(f"edgetpu_compiler did not run: {compiled.get('why', 'not requested')}.")
    if compiled.get("error"):
        return escape(f"edgetpu_compiler failed: {compiled['error']}.")
    outputs = [os.path.basename(str(p)) for p in (compiled.get("outputs") or ()) if str(p).endswith(".tflite")]
    return escape("edgetpu_compiler wrote " + (", ".join(outputs) if outputs else "no model") + ".")


def warnings_section(document):
    found = list(document.get("warnings") or ()) + [f"data: {w}" for w in
                                                    ((document.get("data") or {}).get("warnings") or ())]
    unique = list(dict.fromkeys(str(w) for w in found))
    items = "".join(f"<li>{escape(w)}</li>" for w in unique)
    return "<h2>Warnings</h2>" + (f"<ul>{items}</ul>" if unique else "<p>none</p>")


def _curves(document):
    history = document.get("history") or []
    if not history:
        return "<h2>Training curves</h2><p>no epochs recorded</p>"
    best = document.get("best_epoch")
    picture = charts.training_curves(history, best_epoch=best)
    return (f"<h2>Training curves</h2><p>{escape(curves_sentence(len(history), best, document.get('stopped_early')))}"
            f"</p>{inline_picture(picture, 'training curves')}")


def curves_sentence(epochs, best, stopped_early):
    """"6 epochs, best epoch 5 (...), stopped early" from the best epoch (a number, or {phase: number}) and
    whether training stopped early (a bool, or {phase: bool})."""
    sentence = f"{epochs} {'epoch' if epochs == 1 else 'epochs'}"
    if isinstance(best, dict) and best:
        sentence += (", best epoch of each phase: " + ", ".join(f"{phase} {number(n)}" for phase, n in best.items())
                     + " (the model keeps the last phase's best weights)")
    elif best is not None:
        sentence += f", best epoch {number(best)} (its weights are kept)"
    if isinstance(stopped_early, dict):
        stopped = [phase for phase, early in stopped_early.items() if early]
        if stopped:
            sentence += ", stopped early in " + " and ".join(stopped)
    elif stopped_early:
        sentence += ", stopped early"
    return sentence + "."


def _confusions(document):
    shown = confusions_to_show(document)
    if not shown:
        return ""
    labels = class_names(document)
    parts = ["<h2>Confusion matrices (test pictures; rows: true class, columns: predicted)</h2>"]
    for name, matrix in shown:
        picture = charts.confusion_matrix_picture(matrix, labels, f"{name} model, test pictures")
        parts.append(inline_picture(picture, f"confusion matrix, {name} model"))
    if len(shown) == 1 and len(tested_models(document)) == 2:
        parts.append("<p>The float model's confusion matrix is the same.</p>")
    return "".join(parts)


def _per_class(document):
    models = tested_models(document)
    if not any(scores.get("per_class") for scores in models.values()):
        return ""
    labels = class_names(document)
    for scores in models.values():
        labels += [name for name in (scores.get("per_class") or {}) if name not in labels]
    header = ["class", "test pictures"]
    for name in models:
        header += [f"{name} precision", f"{name} recall"]
    rows = []
    for label in labels:
        found = [(scores.get("per_class") or {}).get(label) or {} for scores in models.values()]
        support = next((f["support"] for f in found if f.get("support") is not None), None)
        row = [label, number(support)]
        for f in found:
            row += [percent(f.get("precision")), percent(f.get("recall"))]
        rows.append(row)
    return "<h2>Per class (test pictures)</h2>" + table(header, rows)


def _misclassified(document):
    every = [item for item in (document.get("misclassified") or ()) if isinstance(item, dict)]
    if not every:
        return "<h2>Misclassified test pictures</h2><p>none</p>"
    shown = misclassified_to_show(document)
    with_model = len({item.get("model") for item in every}) > 1
    figures = []
    for item in shown:
        picture = charts.thumbnail(item.get("file"))
        title = str(item.get("file") or "")
        if picture.problem:
            title += f" ({picture.problem})"
        thumbnail = inline_picture(picture.image, item.get("file") or "", "JPEG")
        caption = escape(misclassified_caption(item, with_model))
        figures.append(f"<figure title='{escape(title)}'>{thumbnail}<figcaption>{caption}</figcaption></figure>")
    note = (f"<p>The {len(shown)} most confident of {len(every)} mistakes; all are listed in {JSON_NAME}.</p>"
            if len(shown) < len(every) else
            "<p>Most confident first: a confident mistake can be a picture filed under the wrong class.</p>")
    return "<h2>Misclassified test pictures</h2>" + note + f"<div class='thumbnails'>{''.join(figures)}</div>"


def _data(document):
    data = document.get("data") or {}
    if not data:
        return ""
    parts = ["<h2>Data</h2>"]
    if data.get("source"):
        parts.append(f"<p>From {escape(data['source'])}.</p>")
    per_class = data.get("per_class") or {}
    splits = ("train", "val", "test")
    rows = [[label] + [number((per_class.get(label) or {}).get(split)) for split in splits]
            for label in class_names(document) + [name for name in per_class if name not in class_names(document)]
            if label in per_class]
    rows.append(["all"] + [number(data.get(split)) for split in splits])
    parts.append(table(("class", "train", "validation", "test"), rows))
    skipped_files = [item for item in (data.get("skipped_files") or ()) if isinstance(item, dict)]
    skipped = data.get("skipped", len(skipped_files))
    parts.append(f"<p>{escape(number(skipped))} {'file' if skipped == 1 else 'files'} skipped.</p>")
    if skipped_files:
        parts.append(table(("file", "reason"), [(item.get("file", ""), item.get("reason", ""))
                                                 for item in skipped_files[:MAX_SKIPPED_ROWS]]))
        if len(skipped_files) > MAX_SKIPPED_ROWS:
            parts.append(f"<p>The first {MAX_SKIPPED_ROWS} of {len(skipped_files)}; all are listed in "
                         f"{JSON_NAME}.</p>")
    return "".join(parts)


def recipe_rows(recipe):
    """[(setting, value)] of the recipe as people read them: the main settings first, then each phase's own
    settings (a nested dict, such as "head") one row each, as "head: epochs"."""
    keys = [k for k in RECIPE_ORDER if k in recipe] + [k for k in recipe if k not in RECIPE_ORDER]
    rows = []
    for key in keys:
        value = recipe[key]
        if isinstance(value, dict) and key not in INLINE_SETTINGS:
            rows += [(f"{key}: {inner}".replace("_", " "), _setting(v)) for inner, v in value.items()]
        else:
            rows.append((key.replace("_", " "), _setting(value)))
    return rows


def recipe_section(document):
    recipe = document.get("recipe") or {}
    if not recipe:
        return ""
    return "<h2>Recipe</h2>" + table(("setting", "value"), recipe_rows(recipe))


def timings_section(document):
    timings = document.get("timings") or {}
    if not timings:
        return ""
    return "<h2>Time per phase (s)</h2>" + table(("phase", "seconds"),
                                                  [(k, f"{v:.1f}" if isinstance(v, (int, float)) else "n/a")
                                                   for k, v in timings.items()])


def _ensemble(document):
    ensemble = document.get("ensemble") or {}
    comparison = [row for row in (ensemble.get("comparison") or ()) if isinstance(row, dict)]
    if not comparison:
        return ""
    rows = []
    for row in comparison:
        fits = row.get("fits_cache")
        rows.append((row.get("name", ""), percent(row.get("accuracy")), number(row.get("latency_ms")),
                     _mib(row.get("parameter_bytes")), "n/a" if fits is None else "yes" if fits else "no"))
    members = ensemble.get("members") or []
    listed = f"<p>Members: {escape(', '.join(str(m) for m in members))}.</p>" if members else ""
    return ("<h2>Ensemble comparison</h2>" + listed
            + table(("model", "test accuracy", "latency (ms)", "parameters", "fits the on-chip cache"), rows))


STYLE = ("<style>body{font-family:sans-serif;max-width:1040px;margin:2em auto}table{border-collapse:collapse;"
         "font-size:13px;margin:0.5em 0}td,th{border:1px solid #ddd;padding:2px 8px;overflow-wrap:anywhere}"
         "img{max-width:100%;height:auto}.thumbnails{display:flex;flex-wrap:wrap;gap:8px}"
         "figure{margin:0;width:112px;font-size:11px}figcaption{overflow-wrap:anywhere}</style>")


def to_html(document):
    """The report as one self-contained HTML page (pictures inline), in the order: summary, warnings,
    training curves, confusion matrices, per-class table, misclassified pictures, data, recipe, timings,
    ensemble comparison."""
    document = plain(document)
    sections = (_summary, warnings_section, _curves, _confusions, _per_class, _misclassified, _data, recipe_section,
                timings_section, _ensemble)
    return html_page(f"{document.get('model', 'model')}: training report",
                     "".join(section(document) for section in sections))


def html_page(title, body, style=""):
    """One self-contained page: `title` (plain text, escaped here), the report's style with `style` (CSS rules)
    added, and `body` (HTML)."""
    extra = f"<style>{style}</style>" if style else ""
    return (f"<!doctype html><html><head><meta charset='utf-8'><title>{escape(title)}</title>{STYLE}{extra}"
            f"</head><body>{body}</body></html>")


def write(out_dir, document):
    """Write `train_report.json` and `train_report.html` into `out_dir` (created if needed), each atomically;
    returns their paths as `ReportFiles(json_path, html_path)`."""
    document = plain(document)
    return save(out_dir, document, to_html(document))


def save(out_dir, document, page):
    """Write `document` (already `plain`) as `train_report.json` and `page` as `train_report.html` into
    `out_dir` (created if needed), each atomically; returns `ReportFiles(json_path, html_path)`."""
    out_dir = os.fspath(out_dir)
    text = json.dumps(document, indent=2, allow_nan=False)
    try:
        os.makedirs(out_dir, exist_ok=True)
        json_path = write_atomic(os.path.join(out_dir, JSON_NAME), text)
        html_path = write_atomic(os.path.join(out_dir, HTML_NAME), page)
    except OSError as error:
        raise EdgekitError(f"{out_dir}: cannot write the training report there ({error.strerror or error}): "
                           "choose another output folder") from None
    return ReportFiles(json_path, html_path)

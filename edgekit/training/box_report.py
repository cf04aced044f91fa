"""The detector's training report: `train_report.json` (the trainer's document as plain JSON) and
`train_report.html` (for people), the classifier's file names and layout (`train_report`).

The page shows COCO mAP and mAP@0.5 of the float and int8 models on the test split, each class's AP, the loss
curves, the precision-recall curves, the data and recipe, and example test pictures with their ground-truth
boxes beside the int8 model's. The examples are drawn from the picture files (they are not in the JSON).
Pillow, numpy and the standard library only (no TensorFlow); every optional part of the document may be
missing, and every string from the user (class names, file names) is escaped.
"""

import os

from edgekit.training import box_charts
# The classifier's file names (JSON_NAME, HTML_NAME) and page pieces: one report layout for both trainers.
from edgekit.training.train_report import (HTML_NAME, JSON_NAME, curves_sentence, deployment_section, escape,
                                           html_page, inline_picture, listed_names, number, ordered_models, percent,
                                           plain, recipe_section, save, table, timings_section, warnings_section)

__all__ = ["HTML_NAME", "JSON_NAME", "MAX_EXAMPLES", "class_list", "points_apart", "to_html", "write"]


# The most example pairs the page shows: each is a few tens of kilobytes inline.
MAX_EXAMPLES = 12
# Recipe settings that are a [low, high] range, shown as "low to high" rather than as a size.
RANGE_SETTINGS = ("jitter", "scale_jitter")
SPLITS = (("train", "train"), ("val", "validation"), ("test", "test"))
STYLE = ".pairs figure{width:auto;margin:0.5em 0;font-size:12px}"


def class_list(document):
    """The class names, in the model's order, then any other class the test scores name."""
    names = [str(name) for name in document.get("classes") or ()]
    for scores in _models(document).values():
        names += [name for name in (scores.get("per_class") or {}) if name not in names]
    return names


def points_apart(int8, float_):
    """"1.2 points below" or "the same as" (int8 against float, both in [0, 1]), or None when one is missing."""
    if not all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in (int8, float_)):
        return None
    points = round(100 * (int8 - float_), 1)
    return "the same as" if points == 0 else f"{abs(points):.1f} points {'above' if points > 0 else 'below'}"


def _models(document):
    return ordered_models(document.get("test") or {})


# --- sections -------------------------------------------------------------------------------------------

def _summary(document):
    classes = class_list(document)
    size = document.get("input_size")
    at_size = f" at {' x '.join(str(v) for v in size)} pixels" if isinstance(size, list) and size else ""
    parts = [f"<h1>{escape(document.get('model', 'model'))}: training report</h1>",
             f"<p>Task {escape(document.get('task', 'detection'))}{escape(at_size)}, {len(classes)} classes: "
             f"{escape(listed_names(classes))}.</p>"]
    models = _models(document)
    if models:
        rows = [[title] + [percent(scores.get(key)) for scores in models.values()]
                for key, title in (("map", "mAP"), ("map50", "mAP@0.5"))]
        parts.append(table([""] + [f"test, {name}" for name in models], rows, "summary"))
    int8, float_ = models.get("int8") or {}, models.get("float") or {}
    apart = [points_apart(int8.get(key), float_.get(key)) for key in ("map", "map50")]
    if None not in apart:
        sentence = f"The int8 model's test mAP is {apart[0]} the float model's, its mAP@0.5 {apart[1]} the float's."
        parts.append(f"<p>{escape(sentence)}</p>")
    parts.append(deployment_section(document))
    return "".join(parts)


def _curves(document):
    history = document.get("history") or []
    if not history:
        return "<h2>Training curves</h2><p>no epochs recorded</p>"
    best = document.get("best_epoch")
    picture = box_charts.loss_curves(history, best)
    return (f"<h2>Training curves</h2><p>{escape(curves_sentence(len(history), best, document.get('stopped_early')))}"
            f"</p>{inline_picture(picture, 'loss curves')}")


def _per_class(document):
    models = _models(document)
    if not any(scores.get("per_class") for scores in models.values()):
        return ""
    header = ["class"] + [f"{name} {figure}" for name in models for figure in ("AP", "AP@0.5")]
    rows = []
    for name in class_list(document):
        row = [name]
        for scores in models.values():
            found = (scores.get("per_class") or {}).get(name) or {}
            row += [percent(found.get("ap")), percent(found.get("ap50"))]
        rows.append(row)
    return ("<h2>Per class (test pictures)</h2><p>AP is COCO's, averaged over IoU 0.5 to 0.95; n/a: no box of "
            "that class in the test pictures.</p>" + table(header, rows))


def _precision_recall(document):
    models = _models(document)
    if not box_charts.pr_curves(models):
        return ""
    return ("<h2>Precision-recall (test pictures)</h2>"
            + inline_picture(box_charts.precision_recall(models), "precision-recall curves"))


def _examples(document, examples):
    examples = [item for item in examples or () if isinstance(item, dict)]
    if not examples:
        return ""
    figures = []
    classes = [str(name) for name in document.get("classes") or ()]
    for item in examples[:MAX_EXAMPLES]:
        path, truth, predicted = item.get("path"), item.get("truth") or (), item.get("predicted") or ()
        pair = box_charts.truth_and_prediction(path, truth, predicted, classes)
        title = str(path or "") + (f" ({pair.problem})" if pair.problem else "")
        caption = (f"{os.path.basename(str(path or ''))}: {len(truth)} {'box' if len(truth) == 1 else 'boxes'}, "
                   f"{len(predicted)} found")
        figures.append(f"<figure title='{escape(title)}'>{inline_picture(pair.image, path or '', 'JPEG')}"
                       f"<figcaption>{escape(caption)}</figcaption></figure>")
    note = (f"<p>The first {MAX_EXAMPLES} of {len(examples)} example pictures.</p>"
            if len(examples) > MAX_EXAMPLES else "")
    return ("<h2>Test pictures: ground truth and the int8 model's boxes</h2>" + note
            + f"<div class='pairs'>{''.join(figures)}</div>")


def _data(document):
    data = document.get("data") or {}
    if not data:
        return ""
    parts = ["<h2>Data</h2>"]
    where = data.get("root") or data.get("source")
    if where:
        parts.append(f"<p>From {escape(where)} ({escape(data.get('format') or 'format not recorded')}).</p>")
    rows = [[title] + [number((data.get(split) or {}).get(key)) for key in ("pictures", "boxes", "empty")]
            for split, title in SPLITS if isinstance(data.get(split), dict)]
    if rows:
        parts.append(table(("split", "pictures", "boxes", "pictures without boxes"), rows))
    per_class = data.get("boxes_per_class") or {}
    if per_class:
        parts.append(table(("class", "boxes"), [(name, number(n)) for name, n in per_class.items()]))
    if "clipped" in data or "dropped" in data:
        parts.append(f"<p>{number(data.get('clipped'))} boxes clipped to their picture, "
                     f"{number(data.get('dropped'))} dropped for having no area.</p>")
    return "".join(parts)


def _recipe(document):
    recipe = dict(document.get("recipe") or {})
    for key in RANGE_SETTINGS:
        value = recipe.get(key)
        if isinstance(value, list) and len(value) == 2:
            recipe[key] = f"{value[0]:g} to {value[1]:g}" if all(isinstance(v, (int, float)) for v in value) \
                else f"{value[0]} to {value[1]}"
    return recipe_section({"recipe": recipe})


# --- the files ------------------------------------------------------------------------------------------

def to_html(document, examples=()):
    """The report as one self-contained HTML page (pictures inline), in the order: summary, warnings, training
    curves, per-class AP, precision-recall, example pictures, data, recipe, timings. `examples`: up to
    `MAX_EXAMPLES` dicts {"path", "truth": [(class index, (xmin, ymin, xmax, ymax))], "predicted": [(class
    index, score, box)]} in the picture's pixels."""
    document = plain(document)
    body = "".join((_summary(document), warnings_section(document), _curves(document), _per_class(document),
                    _precision_recall(document), _examples(document, examples), _data(document),
                    _recipe(document), timings_section(document)))
    return html_page(f"{document.get('model', 'model')}: training report", body, STYLE)


def write(out_dir, document, examples=()):
    """Write `train_report.json` (the document; the examples are only drawn) and `train_report.html` into
    `out_dir` (created if needed), each atomically; returns `train_report.ReportFiles(json_path, html_path)`."""
    document = plain(document)
    return save(out_dir, document, to_html(document, examples))


"""`edgekit run`: images through a model (or its segments, pipelined over several Edge TPUs) on the Edge TPU or
the CPU, with classes, boxes or a mask per image.

The JSON documents of results are built here, from the runtime's namedtuples; `edgekit camera`, `bench`
and `demo` use the same pieces, so a result looks the same wherever it is printed.
"""

import click

from edgekit.cli.common import (device_option, handles_errors, json_option, labels_option, print_output, resize_option,
                                task_option, threads_option, threshold_option)
from edgekit.errors import EdgekitError
from edgekit.runtime.adapters.segment import class_areas
from edgekit.runtime.inference import DEFAULT_TOP_K, run_images
from edgekit.runtime.labels import label_name
from edgekit.runtime.pipeline import clipped_box


@click.command("run")
@click.argument("model", type=click.Path())
@click.argument("images", nargs=-1, required=True, type=click.Path(dir_okay=False))
@device_option()
@labels_option()
@click.option("--top-k", default=DEFAULT_TOP_K, show_default=True, help="Classes to report per image.")
@threshold_option()
@task_option()
@resize_option("Resize method [the model's, else the task's default].")
@threads_option()
@click.option("--save", "save_to", type=click.Path(), help="Write the annotated image (a file for one image, "
                                                            "else a folder).")
@json_option()
@handles_errors
def run_command(model, images, device, labels_path, top_k, threshold, task, resize, threads, save_to, as_json):
    """Classify, detect or segment IMAGES with MODEL on the Edge TPU or the CPU.

    MODEL is a .tflite file, an ensemble file, or a model cut into segments (by `edgekit segment` or
    `edgekit compile --segments`): their folder, or the segment files in order, each a .tflite, before the
    images. Segments run pipelined, one per device: --device usb:0,usb:1 (or pci:0,pci:1), else as many Edge
    TPUs as are found, else the CPU.

    \b
    Example:
      edgekit run mobilenet_v2_1.0_224_quant_edgetpu.tflite cat.jpg --labels imagenet_labels.txt
      edgekit run det_segment_0_of_2_edgetpu.tflite det_segment_1_of_2_edgetpu.tflite street.jpg \\
          --device usb:0,usb:1
      edgekit run det_segments/ street.jpg park.jpg
    """
    models, images = split_models(model, images)
    report = run_images(models, images, device=device, labels_path=labels_path, top_k=top_k, threshold=threshold,
                        task=task, resize=resize, threads=threads, save_to=save_to)
    print_output(run_document(report), as_json, format_run)


def split_models(model, arguments):
    """(model paths, image paths) of `edgekit run MODEL ARGUMENTS...`: the .tflite files right after MODEL are
    more segments of it (an image is never a .tflite file), the rest are the images."""
    models, rest = [model], list(arguments)
    while rest and rest[0].lower().endswith(".tflite"):
        models.append(rest.pop(0))
    if not rest:
        raise EdgekitError(f"no images after the model ({', '.join(models)}): give the images to run, after the "
                           "model's .tflite file(s), as in `edgekit run MODEL.tflite IMAGE...`")
    return models, rest


# --- JSON -----------------------------------------------------------------------------------------------

def model_document(info):
    """The head of every document about a model that ran: which file, where, through what, for which task."""
    document = {"model": info.path, "ran": info.ran, "device": info.device, "backend": info.backend,
                "task": info.task}
    if info.combine is not None:  # an ensemble
        document.update(combine=info.combine, weights=info.weights)
    if info.segments is not None:  # a model cut into segments ("ran" lists them, "device" each one's)
        document["segments"] = info.segments
    return document


def classes_document(classes, labels):
    return [{"id": c.id, "label": label_name(labels, c.id), "score": round(float(c.score), 6)} for c in classes]


def objects_document(objects, labels, size):
    """Objects with their boxes clipped to the picture (`size`: width, height), to the hundredth of a pixel."""
    return [{"id": obj.id, "label": label_name(labels, obj.id), "score": round(float(obj.score), 6),
             "bbox": [round(v, 2) for v in clipped_box(obj.bbox, size)]} for obj in objects]


def mask_document(mask, labels):
    """The mask's shape and the classes it shows, largest area first (not the pixels themselves)."""
    classes = [{"id": area.id, "label": label_name(labels, area.id), "fraction": round(area.fraction, 6)}
               for area in class_areas(mask)]
    return {"shape": list(mask.shape), "classes": classes}


def findings_document(result, labels):
    """{"classes": ...}, {"objects": ...} or {"mask": ...}: what an `ImageResult` found, for its task."""
    if result.classes is not None:
        return {"classes": classes_document(result.classes, labels)}
    if result.objects is not None:
        return {"objects": objects_document(result.objects, labels, result.size)}
    return {"mask": mask_document(result.mask, labels)}


def image_document(result, labels, saved=None):
    document = {"image": str(result.path), "latency_ms": result.latency_ms, "timings_ms": result.timings_ms,
                **findings_document(result, labels)}
    if saved is not None:
        document["saved"] = saved
    return document


def run_document(report):
    """The document `edgekit run --json` prints, from a `runtime.inference.RunReport`."""
    return dict(model_document(report.model),
                results=[image_document(result, report.labels, saved)
                         for result, saved in zip(report.results, report.saved)])


# --- text -----------------------------------------------------------------------------------------------

def format_run(document):
    segments = f" ({document['segments']} segments)" if "segments" in document else ""
    lines = [f"{document['model']}{segments} on {document['device']} ({document['backend']}, {document['task']})"]
    for result in document["results"]:
        lines.append(f"{result['image']}: invoke {result['latency_ms']:.1f} ms")
        for c in result.get("classes", []):
            lines.append(f"  {c['id']:>5}  {c['label']:<30} {c['score']:.4f}")
        for o in result.get("objects", []):
            box = ", ".join(f"{v:.0f}" for v in o["bbox"])
            lines.append(f"  {o['id']:>5}  {o['label']:<20} {o['score']:.4f}  [{box}]")
        if "mask" in result:
            parts = [f"{c['label']} {100 * c['fraction']:.1f}%" for c in result["mask"]["classes"][:6]]
            lines.append("  mask " + "x".join(map(str, result["mask"]["shape"])) + ": " + ", ".join(parts))
        if "saved" in result:
            lines.append(f"  saved {result['saved']}")
    if not document["results"]:
        lines.append("no images")
    return "\n".join(lines)

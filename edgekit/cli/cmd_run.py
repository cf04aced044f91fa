"""`edgekit run`: images through a model on the Edge TPU or the CPU, with classes, boxes or a mask per image."""

import click

from edgekit.cli.options import (device_option, emit_json, handles_errors, json_option, labels_option, resize_option,
                                 task_option, threads_option, threshold_option)


@click.command("run")
@click.argument("model", type=click.Path(dir_okay=False))
@click.argument("images", nargs=-1, required=True, type=click.Path(dir_okay=False))
@device_option()
@labels_option()
@click.option("--top-k", default=5, show_default=True, help="Classes to report per image.")
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

    \b
    Example:
      edgekit run mobilenet_v2_1.0_224_quant_edgetpu.tflite cat.jpg --labels imagenet_labels.txt
    """
    from edgekit.runtime.inference import run_images

    document = run_images(model, images, device=device, labels_path=labels_path, top_k=top_k, threshold=threshold,
                          task=task, resize=resize, threads=threads, save_to=save_to)
    if as_json:
        emit_json(document)
    else:
        click.echo(format_run(document))


def format_run(document):
    lines = [f"{document['model']} on {document['device']} ({document['backend']}, {document['task']})"]
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

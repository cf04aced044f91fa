"""`edgekit learn imprint|backprop`: new classes on the board, from a folder of pictures, without TensorFlow
(over `edgekit.learn.pictures`)."""

import click

from edgekit.cli.common import device_option, handles_errors, json_option, print_output, threads_option


def _classes_text(classes):
    return ", ".join(f"{c.id} {c.label} ({c.pictures} pictures{', new' if c.new else ''})" for c in classes)


def learn_document(result):
    """The --json document of either subcommand: the result's fields, each taught class an object."""
    document = result._asdict()
    document["classes"] = [c._asdict() for c in result.classes]
    return document


def format_imprinted(result):
    """The text `edgekit learn imprint` prints, from its `pictures.Imprinted`."""
    lines = [f"edgekit learn imprint: {result.pictures} pictures through the extractor on {result.device} in "
             f"{result.extract_s:.1f} s; imprinted in {result.learn_s * 1000:.1f} ms, written in "
             f"{result.serialize_s * 1000:.0f} ms",
             f"classes taught: {_classes_text(result.classes)}",
             f"wrote {result.out} ({result.num_classes} classes)"]
    if result.twin:
        lines.append(f"wrote its CPU twin {result.twin}")
    return "\n".join(lines)


def format_backprop(result):
    """The text `edgekit learn backprop` prints, from its `pictures.Backprop`."""
    val = (f", validation accuracy {result.val_accuracy:.3f} on {result.val_pictures} held-out pictures"
           if result.val_accuracy is not None else " (no pictures held out)")
    return "\n".join([
        f"edgekit learn backprop: {result.pictures} pictures through the extractor on {result.device} in "
        f"{result.extract_s:.1f} s; {result.iterations} SGD steps in {result.train_s:.2f} s",
        f"training accuracy {result.train_accuracy:.3f}{val}",
        f"classes: {_classes_text(result.classes)}",
        f"wrote {result.out}"])


@click.group("learn")
def learn_command():
    """Teach a model new classes on the board itself, without TensorFlow (pycoral's on-device learning).

    \b
    Example:
      edgekit learn imprint efficientnet-lite0_imprinting.tflite --data pictures/ --out mine.tflite
      edgekit learn backprop efficientnet-lite0_embedding.tflite --data pictures/ --out mine.tflite
    """


@learn_command.command("imprint")
@click.argument("model", type=click.Path(dir_okay=False))
@click.option("--data", required=True, type=click.Path(file_okay=False),
              help="A folder with one sub-folder of pictures per class; its name is the class's label.")
@click.option("--out", required=True, type=click.Path(dir_okay=False), help="The new model (.tflite).")
@click.option("--keep-classes", is_flag=True,
              help="Keep the model's classes and add the new ones after them (a class named like an imprinted "
                   "one gets more pictures).")
@device_option()
@threads_option()
@json_option()
@handles_errors
def imprint_command(model, data, out, keep_classes, device, threads, as_json):
    """Imprint the classes of --data into MODEL (weight imprinting: a few pictures a class, in seconds).

    MODEL has pycoral's imprinting head (`edgekit convert efficientnet-lite0 --imprinting` makes one; a
    compiled one runs its extractor on the Edge TPU).

    \b
    Example:
      edgekit learn imprint efficientnet-lite0_imprinting.tflite --data pictures/ --out mine.tflite
    """
    from edgekit.learn.pictures import imprint_folder

    result = imprint_folder(model, data, out, keep_classes=keep_classes, device=device, threads=threads)
    print_output(result, as_json, format_imprinted, learn_document)


@learn_command.command("backprop")
@click.argument("extractor", type=click.Path(dir_okay=False))
@click.option("--data", required=True, type=click.Path(file_okay=False),
              help="A folder with one sub-folder of pictures per class; its name is the class's label.")
@click.option("--out", required=True, type=click.Path(dir_okay=False), help="The new model (.tflite).")
@click.option("--epochs", type=click.IntRange(1), default=None, help="Passes over the training embeddings.")
@click.option("--lr", "learning_rate", type=float, default=None, help="SGD learning rate.")
@click.option("--batch-size", type=click.IntRange(1), default=None, help="Embeddings per SGD step.")
@click.option("--val-split", type=float, default=None, help="Share of each class held out for validation.")
@device_option()
@threads_option()
@json_option()
@handles_errors
def backprop_command(extractor, data, out, epochs, learning_rate, batch_size, val_split, device, threads, as_json):
    """Train a softmax layer on EXTRACTOR's embeddings of --data and append it (pycoral's backprop).

    EXTRACTOR is an embedding extractor (`edgekit convert efficientnet-lite0 --embedding`, or Coral's
    mobilenet_v1_1.0_224_quant_embedding_extractor).

    \b
    Example:
      edgekit learn backprop efficientnet-lite0_embedding.tflite --data pictures/ --out mine.tflite --epochs 50
    """
    from edgekit.learn import pictures

    chosen = {"epochs": epochs, "learning_rate": learning_rate, "batch_size": batch_size, "val_split": val_split}
    result = pictures.backprop_folder(extractor, data, out, device=device, threads=threads,
                                      **{k: v for k, v in chosen.items() if v is not None})
    print_output(result, as_json, format_backprop, learn_document)

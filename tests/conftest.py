"""Shared fixtures: where the test data lives, and when Edge TPU tests run."""

import os

import pytest
from testdata import coral_file


@pytest.fixture
def coral():
    """Callable fixture: coral("cat.bmp") -> Path."""
    return coral_file


@pytest.fixture
def no_edgetpu_library(monkeypatch, tmp_path):
    """No libedgetpu, whatever this machine has: the CPU path runs and messages are the same everywhere."""
    monkeypatch.setenv("EDGEKIT_EDGETPU_LIBRARY", str(tmp_path / "absent" / "libedgetpu.so.1"))


@pytest.fixture
def no_edgetpu_compiler(monkeypatch):
    """No edgetpu_compiler on PATH or in EDGETPU_COMPILER, so results never depend on this machine's."""
    monkeypatch.setenv("PATH", "/nonexistent")
    monkeypatch.delenv("EDGETPU_COMPILER", raising=False)


def _edgetpu_attached():
    if os.environ.get("EDGEKIT_EDGETPU") == "1":
        return True
    from edgekit.runtime import edgetpu

    return bool(edgetpu.list_edge_tpus())


def pytest_collection_modifyitems(config, items):
    marked = [item for item in items if "edgetpu" in item.keywords]
    if not marked or _edgetpu_attached():
        return
    skip = pytest.mark.skip(reason="no Edge TPU attached (set EDGEKIT_EDGETPU=1 to force)")
    for item in marked:
        item.add_marker(skip)

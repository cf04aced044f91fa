"""Shared fixtures and hooks: the Coral test files (found through tests/testdata.py), a machine without
libedgetpu or edgetpu_compiler, when Edge TPU tests run, and the figures tests report without asserting.

Test files import helpers as top-level modules (`from testdata import coral_file`, `from cli_runner import
edgekit`): pytest's default "prepend" import mode puts tests/ on sys.path because this conftest.py lives
there and tests/ has no __init__.py. Never `import conftest`: each folder may have its own.
"""

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


def pytest_terminal_summary(terminalreporter):
    """List what tests recorded with `record_property` (timings, counts): figures to read, never asserted."""
    reports = [report for outcome in ("passed", "failed") for report in terminalreporter.stats.get(outcome, ())
               if report.when == "call" and report.user_properties]
    if not reports:
        return
    terminalreporter.section("reported by tests")
    for report in reports:
        figures = ", ".join(f"{name}={value}" for name, value in report.user_properties)
        terminalreporter.write_line(f"{report.nodeid}: {figures}")

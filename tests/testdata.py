"""Where the shared test data lives: ../shared/testdata beside the checkout, or EDGEKIT_TESTDATA.

A module of its own (not conftest) so that any test file can import it: `conftest` names a different
module in each folder that has one, and which of them `import conftest` finds depends on the run.
"""

import os
from pathlib import Path

import pytest

TESTDATA = Path(os.environ.get("EDGEKIT_TESTDATA", Path(__file__).resolve().parents[2] / "shared" / "testdata"))
CORAL = TESTDATA / "coral"


def coral_file(name):
    """Path of a file in ../shared/testdata/coral. Missing data fails under CI and skips elsewhere."""
    path = CORAL / name
    if not path.exists():
        message = f"test data {path} is missing (set EDGEKIT_TESTDATA to the shared testdata folder)"
        if os.environ.get("CI") == "true":
            pytest.fail(message)
        pytest.skip(message)
    return path

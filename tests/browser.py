"""Headless Chromium for tests that look at a page the way a user would (the camera preview, the training
report). `.ci/install-chromium.sh` installs Debian's chromium in CI, where a missing browser fails the test
instead of skipping it."""

import os
import shutil

import pytest

# Headless and offline: without the background-networking flags Chromium keeps trying Google's hosts, which
# this sandbox refuses.
CHROMIUM_FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                  "--disable-background-networking", "--disable-component-update", "--disable-sync"]


def chromium(purpose):
    """The Chromium executable; skips the test (fails it under CI=true) when none is installed."""
    path = shutil.which("chromium") or shutil.which("chromium-browser")
    if path:
        return path
    message = f"Chromium is not installed (run .ci/install-chromium.sh); {purpose} needs it"
    if os.environ.get("CI") == "true":
        pytest.fail(message)
    pytest.skip(message)

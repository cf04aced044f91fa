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


# Appended to a page: once it has loaded, lists every picture's natural width (-1: not loaded) in a <pre>.
_WIDTHS_SCRIPT = ("<script>window.addEventListener('load', () => { const out = document.createElement('pre');"
                  " out.id = 'widths'; out.textContent = Array.from(document.images, i => i.complete ?"
                  " i.naturalWidth : -1).join(','); document.body.appendChild(out); });</script>")


def picture_widths(html_path, scratch, purpose, timeout_s=120):
    """The natural width of every <img> of the page at `html_path` as headless Chromium loaded it (0 or -1 for
    a picture it could not show). `scratch`: a folder for the probe page and the browser profile."""
    import re
    import subprocess
    from pathlib import Path

    browser = chromium(purpose)
    page = Path(html_path).read_text(encoding="utf-8")
    probe = Path(scratch) / "probe.html"
    probe.write_text(page.replace("</body>", _WIDTHS_SCRIPT + "</body>"), encoding="utf-8")
    command = [browser, *CHROMIUM_FLAGS, "--hide-scrollbars", f"--user-data-dir={Path(scratch) / 'profile'}",
               "--virtual-time-budget=5000", "--dump-dom", probe.as_uri()]
    done = subprocess.run(command, capture_output=True, text=True, timeout=timeout_s)
    assert done.returncode == 0, done.stderr[-2000:]
    found = re.search(r"<pre id=\"widths\">([^<]*)</pre>", done.stdout)
    assert found, done.stdout[-2000:]
    return [int(w) for w in found.group(1).split(",") if w]

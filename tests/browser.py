"""Headless Chromium for tests that look at a page the way a user would (the camera preview, the training
report). `.ci/install-chromium.sh` installs Debian's chromium in CI, where a missing browser fails the test
instead of skipping it."""

import contextlib
import json
import os
import shutil
import signal
import threading
import time

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


class DevToolsPage:
    """One tab of headless Chromium, driven the way a user drives it: read what the page shows, click its
    buttons, type into its fields (`evaluate`, `wait_for`). Standard library only: Chromium's DevTools
    protocol over `--remote-debugging-pipe`, where the browser reads commands from its fd 3 and writes
    replies and events to its fd 4, each message one JSON object followed by a NUL byte. The tab is made
    with Target.createTarget and spoken to through Target.attachToTarget's flat session (messages carry its
    sessionId). Every wait is bounded by `timeout_s`; use it as a context manager so the browser always ends.
    """

    def __init__(self, url, scratch, purpose, timeout_s=60):
        import fcntl
        from pathlib import Path

        browser = chromium(purpose)
        self.timeout_s = timeout_s
        self._replies, self._next_id, self._errors = {}, 0, []
        self._cond = threading.Condition()
        self._closed = False
        self._log = open(Path(scratch) / "chromium.log", "wb")
        # Both pipes moved above fd 9 first: a pipe that happened to be fd 3 or 4 would otherwise be
        # overwritten by the other's dup2 before it was copied itself.
        commands_read, commands_write = (self._high(fd, fcntl) for fd in os.pipe())
        replies_read, replies_write = (self._high(fd, fcntl) for fd in os.pipe())
        actions = [(os.POSIX_SPAWN_OPEN, 0, os.devnull, os.O_RDONLY, 0),
                   (os.POSIX_SPAWN_DUP2, self._log.fileno(), 1), (os.POSIX_SPAWN_DUP2, self._log.fileno(), 2),
                   (os.POSIX_SPAWN_DUP2, commands_read, 3), (os.POSIX_SPAWN_DUP2, replies_write, 4)]
        argv = [browser, *CHROMIUM_FLAGS, "--remote-debugging-pipe", "--hide-scrollbars", "--window-size=1000,800",
                f"--user-data-dir={Path(scratch) / 'devtools-profile'}", "about:blank"]
        # posix_spawn rather than subprocess's preexec_fn, which is unsafe with the test's threads running.
        try:
            self.pid = os.posix_spawn(browser, argv, os.environ, file_actions=actions)
        finally:
            os.close(commands_read)
            os.close(replies_write)
        self._commands, self._replies_fd = commands_write, replies_read
        self._reader = threading.Thread(target=self._read, name="devtools-reader", daemon=True)
        self._reader.start()
        try:
            target = self.command("Target.createTarget", {"url": url})["targetId"]
            self.session = self.command("Target.attachToTarget", {"targetId": target, "flatten": True})["sessionId"]
            # The tab starts on about:blank: wait for the page itself, parsed (its pictures may still load).
            self.wait_for("location.href !== 'about:blank' && document.readyState !== 'loading'")
        except BaseException:
            self.close()
            raise

    @staticmethod
    def _high(fd, fcntl):
        moved = fcntl.fcntl(fd, fcntl.F_DUPFD_CLOEXEC, 10)
        os.close(fd)
        return moved

    def _read(self):
        pending = b""
        while True:
            try:
                chunk = os.read(self._replies_fd, 1 << 16)
            except OSError:
                chunk = b""
            if not chunk:
                break
            pending += chunk
            *messages, pending = pending.split(b"\0")
            for raw in messages:
                message = json.loads(raw)
                with self._cond:
                    if "id" in message:
                        self._replies[message["id"]] = message
                    elif message.get("method") == "Runtime.exceptionThrown":
                        self._errors.append(message["params"]["exceptionDetails"].get("text", ""))
                    self._cond.notify_all()
        with self._cond:
            self._closed = True
            self._cond.notify_all()

    def command(self, method, params=None, session=None, timeout_s=None):
        """Send one DevTools command and wait for its reply: the `result` object (AssertionError on an error)."""
        with self._cond:
            self._next_id += 1
            number = self._next_id
        message = {"id": number, "method": method, "params": params or {}}
        if session:
            message["sessionId"] = session
        data = json.dumps(message).encode() + b"\0"
        while data:
            data = data[os.write(self._commands, data):]
        with self._cond:
            self._cond.wait_for(lambda: number in self._replies or self._closed, timeout_s or self.timeout_s)
            reply = self._replies.pop(number, None)
        assert reply is not None, f"Chromium did not answer {method} (browser log: {self.log_tail()})"
        assert "error" not in reply, f"{method}: {reply['error']}"
        return reply.get("result", {})

    def evaluate(self, expression, timeout_s=None):
        """The value of a JavaScript expression in the page (a promise is awaited); AssertionError on a throw."""
        result = self.command("Runtime.evaluate", {"expression": expression, "returnByValue": True,
                                                   "awaitPromise": True}, self.session, timeout_s)
        if "exceptionDetails" in result:
            details = result["exceptionDetails"]
            raise AssertionError(f"{expression!r} threw: {details.get('exception', {}).get('description') or details}")
        return result["result"].get("value")

    def wait_for(self, expression, timeout_s=None, poll_s=0.1):
        """Evaluate `expression` until it is truthy, and return that value; AssertionError after `timeout_s`
        with the last value (or error) seen. A throw counts as not yet: the page may still be building."""
        deadline = time.monotonic() + (timeout_s or self.timeout_s)
        while True:
            try:
                value = self.evaluate(expression)
            except AssertionError as e:
                value = e
            if value and not isinstance(value, AssertionError):
                return value
            if time.monotonic() > deadline:
                raise AssertionError(f"still {value!r} after {timeout_s or self.timeout_s} s: {expression}")
            time.sleep(poll_s)

    def log_tail(self, size=2000):
        self._log.flush()
        with open(self._log.name, "rb") as f:
            return f.read()[-size:].decode("utf-8", "replace")

    def close(self):
        """Ask Chromium to quit, and kill it if it has not within a few seconds."""
        with contextlib.suppress(AssertionError, OSError):
            self.command("Browser.close", timeout_s=5)
        deadline = time.monotonic() + 10
        while os.waitpid(self.pid, os.WNOHANG) == (0, 0):
            if time.monotonic() > deadline:
                os.kill(self.pid, signal.SIGKILL)
                os.waitpid(self.pid, 0)
                break
            time.sleep(0.05)
        with contextlib.suppress(OSError):
            os.close(self._commands)
        self._reader.join(10)
        with contextlib.suppress(OSError):
            os.close(self._replies_fd)
        self._log.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

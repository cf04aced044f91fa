"""The browser preview for boards without a screen: annotated frames as MJPEG, a page, live FPS.

Standard library only (http.server in a thread). Routes:
  /            a small page: the stream and its FPS, refreshed every second
  /stream.mjpg multipart/x-mixed-replace JPEG frames, as fast as they are processed
  /frame.jpg   the newest frame, once (the page shows it first, so its load event fires)
  /stats       the live figures as JSON
and whatever routes a caller adds with `MjpegServer.route` (a GET route may replace the page). A POST
route changes something, so it runs only for a request that carries the server's token (`token`, random
per run, printed with the page's URL by whoever starts it) in the X-Edgekit-Token header or a `token`
query parameter; any other POST gets 403 and runs nothing. GET routes must change nothing: a page on
another site can make a browser send GETs to this address, but it cannot know the token.
Frames are JPEG-encoded only when someone asks, once per frame however many people watch; and
`wanted()` tells the camera loop whether anyone is watching at all, so that a board nobody looks at
does not draw overlays for nothing.
"""

import hmac
import html
import json
import secrets
import socket
import threading
import time
from collections import namedtuple
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs

from edgekit.errors import EdgekitError

DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 8080
BOUNDARY = "edgekitframe"
# How long a request waits for a first frame, and how often stream handlers look up to see whether
# the server is closing.
FIRST_FRAME_WAIT_S = 10.0
POLL_S = 0.5
# A /frame.jpg request keeps frames wanted this long (a page polling stills, or one about to stream).
DEMAND_S = 5.0
TOKEN_HEADER = "X-Edgekit-Token"
# The largest POST body a route reads: actions are small JSON documents, never uploads.
MOST_BODY_BYTES = 64 * 1024

Request = namedtuple("Request", "method path query body")
"""What a route's handler gets: method ("GET" or "POST"), path (without the query), query (name -> last
value), body (bytes; b"" for a GET)."""

Reply = namedtuple("Reply", "code kind body")
"""What a route's handler returns: the HTTP status, the Content-Type and the body (bytes)."""


def json_reply(document, code=200):
    """A `Reply` carrying `document` as JSON."""
    return Reply(code, "application/json", json.dumps(document).encode())

PAGE = """<!doctype html>
<html><head><meta charset="utf-8"><title>edgekit camera</title>
<style>
body {{ margin: 0; background: #111; color: #eee; font: 14px sans-serif; }}
header {{ padding: 6px 10px; }}
#fps {{ color: #7fd4ff; font-weight: bold; }}
img {{ display: block; max-width: 100vw; max-height: calc(100vh - 32px); }}
</style></head>
<body>
<header>edgekit camera &middot; {title} &middot; <span id="fps">{fps}</span></header>
<img id="view" src="/frame.jpg" alt="camera">
<script>
// Start on one still frame so the page finishes loading, then switch to the endless stream.
const view = document.getElementById("view");
window.addEventListener("load", () => setTimeout(() => {{ view.src = "/stream.mjpg"; }}, 1000));
async function refresh() {{
  try {{
    const s = await (await fetch("/stats", {{cache: "no-store"}})).json();
    document.getElementById("fps").textContent = s.fps.toFixed(1) + " FPS, invoke " +
      s.latency_ms.toFixed(1) + " ms, frame " + s.frame;
  }} catch (e) {{ document.getElementById("fps").textContent = "stopped"; }}
}}
setInterval(refresh, 1000);
</script>
</body></html>
"""


def parse_address(text):
    """"HOST:PORT", ":PORT", "PORT" or "[::1]:PORT" -> (host, port); the host defaults to 127.0.0.1."""
    text = str(text).strip()
    host, _, port = text.rpartition(":")
    if not host and "." in port:  # "192.168.1.5": a host without a port
        host, port = port, str(DEFAULT_PORT)
    host = host.strip("[]") or DEFAULT_HOST
    if not port.isdigit() or int(port) > 65535:
        raise EdgekitError(f"--serve {text}: give HOST:PORT, e.g. 127.0.0.1:8080 (0.0.0.0:8080 to let "
                           "other machines watch)")
    return host, int(port)


class FrameHub:
    """The newest annotated frame and figures, shared by the camera loop and the request handlers."""

    def __init__(self, title="", quality=80):
        import cv2

        self._cv2 = cv2
        self.title = title
        self.quality = quality
        self.cond = threading.Condition()
        self.closing = False
        self._image, self._seq, self._jpeg, self._jpeg_seq = None, 0, None, -1
        self.stats = {"fps": 0.0, "latency_ms": 0.0, "frame": -1, "dropped": 0}
        self.viewers = 0
        self._asked = None  # time.monotonic() of the last frame request

    def wanted(self):
        """True while a stream is open or a frame was asked for in the last DEMAND_S seconds."""
        asked = self._asked
        return self.viewers > 0 or (asked is not None and time.monotonic() - asked < DEMAND_S)

    def publish(self, image, **stats):
        with self.cond:
            self._image = image
            self._seq += 1
            self.stats.update(stats)
            self.cond.notify_all()

    def update_stats(self, **stats):
        """The figures without a frame (for /stats while nobody watches the picture)."""
        with self.cond:
            self.stats.update(stats)

    def wait_frame(self, after_seq, timeout):
        """(seq, jpeg) of a frame newer than `after_seq`; (after_seq, None) on timeout or closing."""
        self._asked = time.monotonic()
        with self.cond:
            self.cond.wait_for(lambda: self._seq > after_seq or self.closing, timeout)
            if self.closing or self._seq <= after_seq:
                return after_seq, None
            return self._seq, self._encoded()

    def _encoded(self):
        # Called with the condition held, so one encoding serves every client of this frame.
        if self._jpeg_seq != self._seq:
            ok, data = self._cv2.imencode(".jpg", self._image, [self._cv2.IMWRITE_JPEG_QUALITY, self.quality])
            self._jpeg, self._jpeg_seq = (data.tobytes() if ok else None), self._seq
        return self._jpeg

    @property
    def seq(self):
        return self._seq

    def snapshot(self):
        with self.cond:
            return dict(self.stats)

    def close(self):
        with self.cond:
            self.closing = True
            self.cond.notify_all()


class _Handler(BaseHTTPRequestHandler):
    server_version = "edgekit-camera"
    protocol_version = "HTTP/1.0"  # one request per connection: a stream owns its socket until the end

    def log_message(self, *args):
        pass  # stdout carries --json lines; a request log there would break them

    def do_GET(self):
        hub = self.server.hub
        path, query = self._target()
        try:
            if ("GET", path) in self.server.routes:
                self._route(Request("GET", path, query, b""))
            elif path in ("/", "/index.html"):
                self._page(hub)
            elif path == "/stream.mjpg":
                self._stream(hub)
            elif path == "/frame.jpg":
                self._frame(hub)
            elif path == "/stats":
                self._send(200, "application/json", json.dumps(hub.snapshot()).encode())
            else:
                self._send(404, "text/plain", b"not found\n")
        except (BrokenPipeError, ConnectionResetError):
            pass  # the viewer went away

    def do_POST(self):
        path, query = self._target()
        try:
            given = self.headers.get(TOKEN_HEADER) or query.get("token") or ""
            # compare_digest: how long the comparison takes says nothing about how much of the token matched.
            if not hmac.compare_digest(given.encode(), self.server.token.encode()):
                self._send(403, "text/plain", b"this needs the token printed with the page's URL: open that URL\n")
            elif ("POST", path) not in self.server.routes:
                self._send(404, "text/plain", b"not found\n")
            elif not 0 <= self._body_length() <= MOST_BODY_BYTES:
                self._send(413, "text/plain", b"the request body is missing its length or too large\n")
            else:
                self._route(Request("POST", path, query, self.rfile.read(self._body_length())))
        except (BrokenPipeError, ConnectionResetError):
            pass

    def _body_length(self):
        text = self.headers.get("Content-Length") or "0"
        return int(text) if text.isdigit() else -1

    def _target(self):
        path, _, query = self.path.partition("?")
        return path, {name: values[-1] for name, values in parse_qs(query).items()}

    def _route(self, request):
        try:
            reply = self.server.routes[(request.method, request.path)](request)
        except EdgekitError as e:  # what the user can fix, said in one line, as on the command line
            reply = Reply(400, "text/plain; charset=utf-8", f"{e}\n".encode())
        self._send(*reply)

    def _send(self, code, kind, body):
        self.send_response(code)
        self.send_header("Content-Type", kind)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Cache-Control", "no-store")
        self.end_headers()
        self.wfile.write(body)

    def _page(self, hub):
        stats = hub.snapshot()
        text = PAGE.format(title=html.escape(hub.title), fps=f"{stats['fps']:.1f} FPS")
        self._send(200, "text/html; charset=utf-8", text.encode())

    def _frame(self, hub):
        # A frame newer than the one held: while nobody watched, the held one may be long stale.
        _, jpeg = hub.wait_frame(hub.seq, FIRST_FRAME_WAIT_S)
        if jpeg is None:
            self._send(503, "text/plain", b"no frame yet\n")
        else:
            self._send(200, "image/jpeg", jpeg)

    def _stream(self, hub):
        self.send_response(200)
        self.send_header("Content-Type", f"multipart/x-mixed-replace; boundary={BOUNDARY}")
        self.send_header("Cache-Control", "no-store")
        self.end_headers()
        seq = hub.seq
        with hub.cond:
            hub.viewers += 1
        try:
            while not hub.closing:
                seq, jpeg = hub.wait_frame(seq, POLL_S)
                if jpeg is None:
                    continue
                self.wfile.write(f"--{BOUNDARY}\r\nContent-Type: image/jpeg\r\nContent-Length: {len(jpeg)}\r\n\r\n"
                                 .encode() + jpeg + b"\r\n")
                self.wfile.flush()
        finally:
            with hub.cond:
                hub.viewers -= 1


class _Server(ThreadingHTTPServer):
    daemon_threads = True  # a viewer's open stream must not keep the program alive


class _Server6(_Server):
    address_family = socket.AF_INET6


class MjpegServer:
    """Serve a `FrameHub` on host:port in a daemon thread. Port 0 picks a free port (see `url`)."""

    def __init__(self, host=DEFAULT_HOST, port=DEFAULT_PORT, title="", quality=80):
        self.hub = FrameHub(title, quality)
        try:
            self.httpd = (_Server6 if ":" in host else _Server)((host, port), _Handler)
        except OSError as e:
            raise EdgekitError(f"--serve {host}:{port}: cannot listen there ({e.strerror or e}): pick another "
                               "port, or a host address this machine has") from None
        self.httpd.hub = self.hub
        self.httpd.routes = {}
        self.token = self.httpd.token = secrets.token_urlsafe(16)
        self._thread = threading.Thread(target=self.httpd.serve_forever, kwargs={"poll_interval": POLL_S},
                                        name="edgekit-mjpeg", daemon=True)

    @property
    def url(self):
        host, port = self.httpd.server_address[:2]
        return f"http://{'[' + host + ']' if ':' in host else host}:{port}/"

    @property
    def url_with_token(self):
        """The page's URL with the token that POST routes need: print it to the person at the board only."""
        return f"{self.url}?token={self.token}"

    def route(self, method, path, handler):
        """Serve `handler(Request) -> Reply` for `method` ("GET" or "POST") at `path`; POST needs the token.
        A handler runs on the request's own thread; an EdgekitError it raises becomes a 400 with its line."""
        if method not in ("GET", "POST"):
            raise ValueError(f"method {method!r}: routes are GET or POST")
        self.httpd.routes[(method, path)] = handler

    def publish(self, image, **stats):
        self.hub.publish(image, **stats)

    def wanted(self):
        """Whether anyone is watching: draw and publish frames only then."""
        return self.hub.wanted()

    def update_stats(self, **stats):
        self.hub.update_stats(**stats)

    def start(self):
        self._thread.start()
        return self

    def close(self):
        self.hub.close()
        if self._thread.is_alive():  # shutdown() waits for serve_forever, so only once it runs
            self.httpd.shutdown()
        self.httpd.server_close()

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.close()

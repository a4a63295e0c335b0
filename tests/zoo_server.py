"""A local HTTP server (127.0.0.1, a free port) serving one file as a test asks, and a zoo entry for it (tests of
sed/model_zoo and tools/download.py).

Modes: "range" answers Range requests with 206 (resumable), "no-range" ignores them (200, the whole file),
"wrong-offset" answers them with 206 but from byte 0;
`drop_first` makes the first request send only the first half of the body before closing the connection.
"""

import hashlib
import http.server
import threading

from sed.model_zoo import Checkpoint


class ZooServer:
    def __init__(self, payload, mode="range", drop_first=False):
        self.payload, self.mode, self.drop_first = payload, mode, drop_first
        self.requests = []  # the Range header of each GET (None without one)
        server = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self):
                server.requests.append(self.headers.get("Range"))
                start = 0
                if self.headers.get("Range") and server.mode in ("range", "wrong-offset"):
                    start = int(self.headers["Range"].split("=")[1].rstrip("-")) if server.mode == "range" else 0
                    self.send_response(206)
                    self.send_header("Content-Range", f"bytes {start}-{len(server.payload) - 1}/{len(server.payload)}")
                else:
                    self.send_response(200)
                body = server.payload[start:]
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                if server.drop_first and len(server.requests) == 1:
                    self.wfile.write(body[: len(body) // 2])
                    self.close_connection = True
                    return
                self.wfile.write(body)

            def log_message(self, *args):
                pass

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.timeout = 5
        self.thread = threading.Thread(target=self.httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
        self.thread.start()

    @property
    def url(self):
        return f"http://127.0.0.1:{self.httpd.server_address[1]}/tiny.pth"

    def entry(self, name="tiny-test", sha256="payload", size=None, url=None):
        """A zoo entry for the served file; sha256="payload" means the payload's true digest."""
        digest = hashlib.sha256(self.payload).hexdigest() if sha256 == "payload" else sha256
        return Checkpoint(
            name=name,
            description="test checkpoint",
            url=url or self.url,
            filename=f"{name}.pth",
            config="configs/tiny_cpu.yaml",
            source="tests",
            size=size,
            sha256=digest,
        )

    def stop(self):
        self.httpd.shutdown()
        self.httpd.server_close()
        self.thread.join(5)

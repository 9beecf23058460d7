"""A local HTTP server for the downloader tests: serves archives with Range support and can
fail on purpose."""

import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


class Server:
    """Serves ``files`` with Range support; ``mode[name]`` = "truncate" | "error" | "corrupt";
    ``requests`` lists the names asked for, ``ranges`` the (name, start) of Range requests."""

    def __init__(self, files: dict[str, bytes]):
        self.files, self.mode, self.ranges, self.requests = files, {}, [], []
        server = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def do_GET(self):
                name = self.path.rsplit("/", 1)[-1]
                server.requests.append(name)
                mode = server.mode.get(name)
                if name not in server.files or mode == "error":
                    self.send_error(500 if mode == "error" else 404)
                    return
                data = server.files[name]
                if mode == "corrupt":
                    data = data[:100] + bytes(len(data) - 100)
                start = 0
                if "Range" in self.headers:
                    start = int(self.headers["Range"].removeprefix("bytes=").split("-")[0])
                    server.ranges.append((name, start))
                    self.send_response(206)
                else:
                    self.send_response(200)
                self.send_header("Content-Length", str(len(data) - start))
                self.end_headers()
                body = data[start:]
                self.wfile.write(body[: len(body) // 2] if mode == "truncate" else body)

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_port}"
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

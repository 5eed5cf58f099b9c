"""A WSGI app on python3's wsgiref that answers with what reached it.

It is the kind of app behind the edge that reads "-" and "_" in header names
alike: wsgiref turns every request header into an environ key HTTP_<NAME>
with "-" mapped to "_", and joins headers that map to the same key. The
answer (JSON) lists the environ's HTTP_* keys, the raw header names and
values as they arrived, the body's length, and the trailers of a chunked
body, which the app reads itself (wsgiref does not), as an app that merges
trailers into its headers would.

Usage: python3 echo_wsgi.py PORT
"""
import json
import sys
from wsgiref.simple_server import WSGIRequestHandler, make_server


class Handler(WSGIRequestHandler):
    def get_environ(self):
        env = super().get_environ()
        env["echo.raw_headers"] = [[k, v] for k, v in self.headers.items()]
        return env

    def log_message(self, *args):
        pass


def read_chunked(f):
    body = b""
    while True:
        size = int(f.readline().split(b";")[0].strip() or b"0", 16)
        if size == 0:
            break
        body += f.read(size)
        f.readline()
    trailers = []
    while True:
        line = f.readline()
        if line in (b"\r\n", b"\n", b""):
            break
        name, _, value = line.decode("latin-1").partition(":")
        trailers.append([name.strip(), value.strip()])
    return body, trailers


def app(environ, start_response):
    trailers = []
    if environ.get("HTTP_TRANSFER_ENCODING", "").lower() == "chunked":
        body, trailers = read_chunked(environ["wsgi.input"])
    else:
        n = int(environ.get("CONTENT_LENGTH") or 0)
        body = environ["wsgi.input"].read(n) if n else b""
    out = json.dumps({
        "environ": {k: v for k, v in environ.items() if k.startswith("HTTP_")},
        "raw": environ["echo.raw_headers"],
        "trailers": trailers,
        "body": len(body),
    }).encode()
    start_response("200 OK", [("Content-Type", "application/json"), ("Content-Length", str(len(out)))])
    return [out]


if __name__ == "__main__":
    server = make_server("127.0.0.1", int(sys.argv[1]), app, handler_class=Handler)
    server.serve_forever()

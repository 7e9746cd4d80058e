"""Out of file descriptors, the web server pauses instead of spinning, and recovers."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

# Run in a child: it lowers its own file descriptor limit, starts the server, uses up every
# descriptor so that accept() fails with EMFILE while clients wait, and measures the CPU time
# the process spends meanwhile; then frees the descriptors and makes a request.
CHILD = textwrap.dedent(
    """
    import os, resource, socket, subprocess, sys, time
    from exporter.web.server import Limits, WebServer

    def app(environ, start_response):
        start_response("200 OK", [("Content-Type", "text/plain"), ("Content-Length", "3")])
        return [b"ok\\n"]

    resource.setrlimit(resource.RLIMIT_NOFILE, (64, 64))
    server = WebServer("127.0.0.1:0", app, limits=Limits(header_timeout=5.0))
    server.start()
    # The clients start first (starting a process needs descriptors) and connect once every
    # descriptor is taken, so accept() fails while nothing waits that could be given back.
    clients = subprocess.Popen([sys.executable, "-c",
        "import socket, time; time.sleep(0.5); s = [socket.create_connection(('127.0.0.1', %d)) "
        "for _ in range(12)]; time.sleep(3)" % server.port])
    hog = []
    try:
        while True:
            hog.append(os.open(os.devnull, os.O_RDONLY))
    except OSError:
        pass
    time.sleep(1.0)
    before = sum(os.times()[:2])
    time.sleep(1.5)
    print("cpu", sum(os.times()[:2]) - before)
    clients.wait()
    for fd in hog:
        os.close(fd)
    with socket.create_connection(("127.0.0.1", server.port), timeout=5) as sock:
        sock.sendall(b"GET / HTTP/1.0\\r\\n\\r\\n")
        print("reply", sock.recv(64).split(b"\\r\\n")[0].decode())
    server.stop()
    server.stop()  # idempotent
    """
)


def test_accept_out_of_file_descriptors_pauses_then_recovers() -> None:
    result = subprocess.run(
        [sys.executable, "-c", CHILD], cwd=ROOT, capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stderr
    lines = dict(line.split(" ", 1) for line in result.stdout.splitlines())
    assert float(lines["cpu"]) < 0.5, result.stdout  # a spinning accept loop burns all 1.5 s
    assert lines["reply"] == "HTTP/1.0 200 OK"
    assert "cannot accept connections: out of file descriptors" in result.stderr

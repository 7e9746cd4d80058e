"""A served request leaves nothing behind for the cyclic collector to find (#19).

The collector is paused while a poll ingests (``paused_gc``), and what it paused over is
moved to the oldest generation: a request handler kept alive by a reference cycle would then
hold its 8 KB read buffer until the next full collection, request after request.
"""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

CHILD = textwrap.dedent(
    """
    import gc, socket
    from exporter.web.server import WebServer

    def app(environ, start_response):
        start_response("200 OK", [("Content-Type", "text/plain"), ("Content-Length", "3")])
        return [b"ok\\n"]

    def alive():
        names = ("_DeadlineReader", "_Handler", "BufferedReader")
        return sum(1 for o in gc.get_objects() if type(o).__name__ in names)

    server = WebServer("127.0.0.1:0", app)
    server.start()
    before = alive()
    gc.disable()  # only reference counting frees what the requests leave
    for _ in range(50):
        with socket.create_connection(("127.0.0.1", server.port), timeout=5) as sock:
            sock.sendall(b"GET / HTTP/1.1\\r\\nHost: x\\r\\nConnection: close\\r\\n\\r\\n")
            while sock.recv(4096):
                pass
    server.stop()
    print(alive() - before)
    """
)


def test_requests_leave_no_handler_behind_for_the_cyclic_collector() -> None:
    result = subprocess.run(
        [sys.executable, "-c", CHILD], cwd=ROOT, capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "0"  # handlers, their readers and read buffers

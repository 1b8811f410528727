"""Shared helpers of the issue-16 review tests: run a snippet or the CLI in a child process (a crash or a
hang there must not take pytest with it), and a loopback JSON-RPC server that answers with hostile bodies."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

SRC = str(Path(__file__).resolve().parents[2] / "src")


def run_python(code: str, *, env: dict | None = None, timeout: float = 20) -> tuple[int | None, str, float]:
    """(returncode or None if it had to be killed, stdout+stderr, seconds)."""
    full_env = {**os.environ, "PYTHONPATH": SRC, **(env or {})}
    start = time.monotonic()
    try:
        p = subprocess.run([sys.executable, "-c", code], env=full_env, capture_output=True, text=True, timeout=timeout)
        return p.returncode, p.stdout + p.stderr, time.monotonic() - start
    except subprocess.TimeoutExpired as exc:
        out = (exc.stdout or b"").decode() if isinstance(exc.stdout, bytes) else (exc.stdout or "")
        return None, out, time.monotonic() - start


def run_cli(args: list[str], *, env: dict | None = None, timeout: float = 20) -> tuple[int | None, str, float]:
    return run_python("import sys; from smartkeys.cli import main; sys.exit(main(sys.argv[1:]))".replace(
        "sys.argv[1:]", repr(args)), env=env, timeout=timeout)


class HostileRPC:
    """A JSON-RPC server on 127.0.0.1 that answers every POST with ``body`` (``trickle``: one byte each
    ``trickle`` seconds, so that no single read ever times out)."""

    def __init__(self, body: bytes, *, trickle: float | None = None) -> None:
        outer = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *a):  # quiet
                pass

            def do_POST(self):
                self.rfile.read(int(self.headers.get("Content-Length", 0)))
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(outer.body)))
                self.end_headers()
                try:
                    if outer.trickle is None:
                        self.wfile.write(outer.body)
                        return
                    for i in range(len(outer.body)):
                        if outer.stopped:
                            return
                        self.wfile.write(outer.body[i:i + 1])
                        self.wfile.flush()
                        time.sleep(outer.trickle)
                except OSError:
                    pass

        self.body, self.trickle, self.stopped = body, trickle, False
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.stopped = True
        self.server.shutdown()
        self.server.server_close()

"""Run an ASGI app with uvicorn, in the foreground (CLI) or in a thread (tests).

A thread server binds its own socket first, so an ephemeral port (0) is known before
the server starts, and stops within a bounded time.
"""

from __future__ import annotations

import socket
import threading
import time
from typing import Any


def listen(host: str, port: int) -> socket.socket:
    sock = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET,
                         socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((host, port))
    sock.listen(128)
    sock.set_inheritable(True)
    return sock


class ServerThread:
    """``with ServerThread(app) as srv: srv.url`` — uvicorn on 127.0.0.1, ephemeral port."""

    def __init__(self, app: Any, host: str = "127.0.0.1", port: int = 0,
                 startup_timeout: float = 10.0) -> None:
        import uvicorn

        self.sock = listen(host, port)
        self.host, self.port = self.sock.getsockname()[:2]
        self.url = f"http://{host}:{self.port}"
        config = uvicorn.Config(app, log_level="warning", access_log=False, lifespan="off",
                                timeout_graceful_shutdown=2)
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run,
                                       kwargs={"sockets": [self.sock]}, daemon=True)
        self.startup_timeout = startup_timeout

    def start(self) -> ServerThread:
        self.thread.start()
        deadline = time.monotonic() + self.startup_timeout
        while not self.server.started:
            if not self.thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError(f"server on {self.url} did not start")
            time.sleep(0.01)
        return self

    def stop(self, timeout: float = 5.0) -> None:
        self.server.should_exit = True
        self.thread.join(timeout)
        self.sock.close()

    def __enter__(self) -> ServerThread:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


def run(app: Any, host: str, port: int) -> None:
    """Serve in the foreground until interrupted."""
    import uvicorn

    # proxy_headers off: X-Forwarded-For is whatever a client writes, and the limiter of
    # unknown idOps counts per address (behind a proxy, every client is the proxy).
    # access_log off: its lines carry whole query strings, and a return URL's holds the
    # amount and the payer's e-mail (docs/payfip.md: no billing data in logs)
    uvicorn.run(app, host=host, port=port, log_level="info", lifespan="off",
                proxy_headers=False, access_log=False)

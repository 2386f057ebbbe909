"""A TCP proxy in front of a real server that cuts upload connections in the middle of a body.

Every connection is forwarded byte for byte. Once armed with ``arm(cut_after, cuts)``, while
cuts remain, a connection that carries a ``PATCH`` request is dropped (both sides closed, nothing
more forwarded) once ``cut_after`` bytes from the ``PATCH`` request line on have gone through:
the server receives a truncated chunk and the client sees its connection die, exactly like a
network failure.
"""

from __future__ import annotations

import socket
import threading
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field

_PATCH = b"PATCH "


@dataclass
class CuttingProxy:
    upstream: tuple[str, int]
    port: int
    cut_after: int = 0
    cuts: int = 0
    cut_done: int = 0
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _sockets: list[socket.socket] = field(default_factory=list)

    def arm(self, *, cut_after: int = 0, cuts: int) -> None:
        """Cut the next ``cuts`` connections that carry a PATCH (0: just forward)."""
        with self._lock:
            self.cut_after, self.cuts, self.cut_done = cut_after, cuts, 0

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def serve(self, listener: socket.socket) -> None:
        while True:
            try:
                client, _ = listener.accept()
            except OSError:
                return
            server = socket.create_connection(self.upstream)
            with self._lock:
                self._sockets += [client, server]
            threading.Thread(target=self._pump_requests, args=(client, server), daemon=True).start()
            threading.Thread(target=self._pump, args=(server, client), daemon=True).start()

    def _pump(self, source: socket.socket, target: socket.socket) -> None:
        with suppress(OSError):
            while data := source.recv(65536):
                target.sendall(data)
        _close(source, target)

    def _pump_requests(self, client: socket.socket, server: socket.socket) -> None:
        """Client → server, counting the bytes from a ``PATCH`` on and cutting when armed."""
        counted: int | None = None  # bytes forwarded since the PATCH request line began
        tail = b""
        with suppress(OSError):
            while data := client.recv(65536):
                if counted is None:
                    window = tail + data
                    at = window.find(_PATCH)
                    tail = window[-len(_PATCH) :]
                    if at < 0 or not self._arm():
                        server.sendall(data)
                        continue
                    start = max(0, at - (len(window) - len(data)))
                    counted = (len(window) - len(data)) - at if start == 0 else 0
                    server.sendall(data[:start])
                    data = data[start:]
                room = self.cut_after - counted
                if len(data) > room:
                    server.sendall(data[: max(room, 0)])
                    break
                counted += len(data)
                server.sendall(data)
        _close(client, server)

    def _arm(self) -> bool:
        """True (and one cut used) when this connection is to be cut."""
        with self._lock:
            if self.cut_done >= self.cuts:
                return False
            self.cut_done += 1
            return True

    def close(self) -> None:
        with self._lock:
            for sock in self._sockets:
                _close(sock)


def _close(*sockets: socket.socket) -> None:
    for sock in sockets:
        with suppress(OSError):
            sock.shutdown(socket.SHUT_RDWR)
        with suppress(OSError):
            sock.close()


@contextmanager
def cutting_proxy(upstream_port: int) -> Iterator[CuttingProxy]:
    """A proxy to ``127.0.0.1:upstream_port``, listening on a free port, not armed."""
    listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    listener.bind(("127.0.0.1", 0))
    listener.listen()
    proxy = CuttingProxy(("127.0.0.1", upstream_port), port=listener.getsockname()[1])
    thread = threading.Thread(target=proxy.serve, args=(listener,), daemon=True)
    thread.start()
    try:
        yield proxy
    finally:
        _close(listener)
        proxy.close()
        thread.join(timeout=5)

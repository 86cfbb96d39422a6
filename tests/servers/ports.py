"""Free loopback ports, and waiting until something listens on one."""

from __future__ import annotations

import socket
import time

LOOPBACK = "127.0.0.1"


def free_port() -> int:
    """A port nobody listens on right now (the kernel's pick, so no guessing or clashes)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((LOOPBACK, 0))
        port: int = sock.getsockname()[1]
        return port


def wait_listening(port: int, timeout: float = 10.0, host: str = LOOPBACK) -> None:
    """Block until a TCP connect succeeds; raise TimeoutError with the port otherwise."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            with socket.create_connection((host, port), timeout=0.5):
                return
        except OSError:
            if time.monotonic() > deadline:
                raise TimeoutError(f"nothing listens on {host}:{port} after {timeout}s") from None
            time.sleep(0.02)


def wait_closed(port: int, timeout: float = 10.0, host: str = LOOPBACK) -> None:
    """Block until connects are refused, i.e. the server really went away."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            with socket.create_connection((host, port), timeout=0.5):
                pass
        except OSError:
            return
        if time.monotonic() > deadline:
            raise TimeoutError(f"{host}:{port} still accepts after {timeout}s")
        time.sleep(0.02)

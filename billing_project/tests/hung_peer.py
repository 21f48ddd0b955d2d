"""A loopback peer that accepts connections and never answers: a hung dependency (Redis, Stripe) for the
tests that pin what a door does when one hangs."""

import socket
import threading
from collections.abc import Iterator
from contextlib import contextmanager


@contextmanager
def hung_peer() -> Iterator[int]:
    """Yield the port of a listener that accepts and then says nothing; closing it afterwards resets
    every connection, so clients still waiting give up at once."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(64)
    held: list[socket.socket] = []
    stop = threading.Event()

    def accept() -> None:
        listener.settimeout(0.1)
        while not stop.is_set():
            try:
                held.append(listener.accept()[0])
            except OSError:
                continue

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    try:
        yield listener.getsockname()[1]
    finally:
        stop.set()
        thread.join()
        for connection in held:
            connection.close()
        listener.close()

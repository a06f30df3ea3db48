"""The provisioner's quick reconnect on the front end's zmq context (no kernel needed)."""

from __future__ import annotations

import time

import zmq

from runtimed.kernels.provisioner import RECONNECT_IVL_MAX_MS, RECONNECT_IVL_MS, quick_reconnect


def test_sockets_opened_after_it_reconnect_quickly_after_a_drop() -> None:
    """A real drop and rebind on the same port, as a restart does: the client's socket
    is back within a few tens of ms, not libzmq's 100-200 ms."""
    client_ctx, kernel_ctx = zmq.Context(), zmq.Context()
    quick_reconnect(client_ctx)
    try:
        kernel = kernel_ctx.socket(zmq.ROUTER)
        port = kernel.bind_to_random_port("tcp://127.0.0.1")
        client = client_ctx.socket(zmq.DEALER)
        assert client.getsockopt(zmq.RECONNECT_IVL) == RECONNECT_IVL_MS
        assert client.getsockopt(zmq.RECONNECT_IVL_MAX) == RECONNECT_IVL_MAX_MS
        client.connect(f"tcp://127.0.0.1:{port}")
        client.send(b"before")
        assert kernel.recv_multipart()[1] == b"before"
        kernel.close(linger=0)
        time.sleep(0.05)  # the drop is seen: the first quick retries are refused
        kernel = kernel_ctx.socket(zmq.ROUTER)
        kernel.bind(f"tcp://127.0.0.1:{port}")
        client.send(b"after")
        assert kernel.poll(1000), "not reconnected within 1 s"
        assert kernel.recv_multipart()[1] == b"after"
    finally:
        client_ctx.destroy(linger=0)  # closes what a failed assert left open
        kernel_ctx.destroy(linger=0)


def test_a_front_ends_own_reconnect_settings_are_kept() -> None:
    for option in (zmq.RECONNECT_IVL, zmq.RECONNECT_IVL_MAX):
        ctx = zmq.Context()
        try:
            ctx.setsockopt(option, 500)
            quick_reconnect(ctx)
            assert ctx.sockopts == {option: 500}
        finally:
            ctx.term()
    quick_reconnect(None)  # a kernel manager without a context: nothing to do

"""Who is at the other end of a Unix socket: the kernel's word, not the peer's.

Linux has ``SO_PEERCRED`` (pid, uid, gid); macOS and the BSDs have ``LOCAL_PEERCRED``
(an ``xucred``: version, uid, groups), the call under ``getpeereid(3)``.
"""

from __future__ import annotations

import socket
import struct
import sys

__all__ = ["peer_pid", "peer_uid"]

# <sys/un.h> on macOS/BSD: SOL_LOCAL = 0, LOCAL_PEERCRED = 1; struct xucred starts
# with u_int cr_version, uid_t cr_uid, short cr_ngroups, gid_t cr_groups[16].
_SOL_LOCAL = 0
_LOCAL_PEERCRED = getattr(socket, "LOCAL_PEERCRED", 1)
_XUCRED_HEAD = "II"
_XUCRED_BUFFER = 256  # > sizeof(struct xucred) on macOS (76) and FreeBSD; the kernel copies less


def _linux_creds(sock: socket.socket) -> tuple[int, int, int] | None:
    try:
        creds = sock.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, struct.calcsize("3i"))
    except OSError:
        return None
    pid, uid, gid = struct.unpack("3i", creds)
    return pid, uid, gid


def peer_pid(sock: socket.socket | None) -> int | None:
    """The connecting process's pid from SO_PEERCRED (Linux), else None."""
    if sock is None or not hasattr(socket, "SO_PEERCRED"):
        return None
    creds = _linux_creds(sock)
    return (creds[0] or None) if creds else None


def peer_uid(sock: socket.socket) -> int | None:
    """The uid of the process at the other end, or None if the OS cannot tell."""
    if hasattr(socket, "SO_PEERCRED"):
        creds = _linux_creds(sock)
        return creds[1] if creds else None
    if sys.platform == "darwin" or "bsd" in sys.platform:
        try:
            raw = sock.getsockopt(_SOL_LOCAL, _LOCAL_PEERCRED, _XUCRED_BUFFER)
        except OSError:
            return None
        if len(raw) < struct.calcsize(_XUCRED_HEAD):
            return None
        _version, uid = struct.unpack_from(_XUCRED_HEAD, raw)
        return int(uid)
    return None

"""The sans-IO protocol: every message round-trips; bad input becomes error events."""

from __future__ import annotations

import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from runtimed.protocol import messages as p
from runtimed.protocol.stats import BackendStats

REQUESTS = [
    p.Ping(),
    p.Take(env_type="uv"),
    p.Take(env_type="conda", wait_s=2.5, lease_pid=1234, keep=True),
    p.Release(path="/x/envs/runtimed-uv-1"),
    p.Status(),
    p.Flush(),
    p.Flush(env_type="uv"),
    p.Shutdown(),
    p.Gc(dry_run=True),
    p.Envs(),
    p.TakeKernel(env_type="uv", cwd="/nb", env={"A": "1"}, argv=["--x"], owner_pid=5, connection={"key": "k"}),
    p.Stats(),
    p.TakeKernel(env_type="uv", connection={"key": "k"}, connection_file="/nb/k.json", owner_grace_s=0.0),
    p.KernelExit(kernel_id="k", wait_s=5.0),
]
ENV = p.PooledEnv(
    env_type="uv", venv_path="/e", python_path="/e/bin/python", id="abc", packages=["ipykernel==7.0"], created_at="t"
)
REPLIES = [
    p.Pong(protocol_version=1, daemon_version="0.1.0"),
    p.EnvReply(env=ENV),
    p.Empty(),
    p.Empty(retry_in_s=1.5),
    p.Released(path="/e"),
    p.StatusReply(
        daemon=p.DaemonInfo(pid=1, version="v", protocol_version=1, started_at="t", socket="/s", cache_dir="/c"),
        pools={
            "uv": p.PoolStatus(
                available=1,
                warming=2,
                target=3,
                leased=1,
                error=p.PoolError(kind="network", message="down", package=None, failures=2, retry_in_s=4.0),
                worker=p.WorkerStatus(state="running", pid=5, rss_bytes=100, cpu_percent=0.5, children=1),
            )
        },
    ),
    p.Flushed(removed=3),
    p.ShuttingDown(),
    p.GcReport(removed=[p.GcItem(path="/e", backend="uv", reason="expired", size_bytes=5)], freed_bytes=5),
    p.EnvList(envs=[p.EnvEntry(path="/e", backend="uv", id="abc", state="leased", size_bytes=1, age_s=2.0)]),
    p.KernelReply(
        kernel=p.LaunchedKernel(id="k", pid=7, create_time=1.5, connection={"key": "s"}, env=ENV, prestarted=True)
    ),
    p.KernelExitReply(returncode=-9),
    p.KernelExitReply(),
    p.StatsReply(since="t", file="/s", backends={"uv": BackendStats(failures={"network": 1})}),
    p.Error(code="x", message="y"),
]


def test_every_registered_message_has_a_round_trip_sample() -> None:
    """A message added to the registry without a sample here fails this test."""
    assert {type(m) for m in REQUESTS} == set(p.REQUEST_TYPES.values())
    assert {type(m) for m in REPLIES} == set(p.REPLY_TYPES.values())


@pytest.mark.parametrize("message", REQUESTS, ids=lambda m: type(m).__name__)
def test_request_round_trip(message: object) -> None:
    line = p.encode(message)
    assert line.endswith(b"\n") and line.count(b"\n") == 1
    assert json.loads(line)["type"] == type(message).TYPE  # type: ignore[attr-defined]
    assert p.decode_line(line.rstrip(b"\n"), p.REQUEST_TYPES) == message


@pytest.mark.parametrize("message", REPLIES, ids=lambda m: type(m).__name__)
def test_reply_round_trip(message: object) -> None:
    assert p.decode_line(p.encode(message).rstrip(b"\n"), p.REPLY_TYPES) == message


def test_env_keeps_original_field_names() -> None:
    data = json.loads(p.encode(p.EnvReply(env=ENV)))
    # ``extras`` was added (a take with packages); clients ignore keys they do not know.
    assert set(data["env"]) == {"env_type", "venv_path", "python_path", "id", "packages", "created_at", "extras"}


@pytest.mark.parametrize(
    ("line", "code"),
    [
        (b"{not json", "invalid_json"),
        (b"\xff\xfe{}", "invalid_utf8"),
        (b'{"type": "launch_missiles"}', "unknown_type"),
        (b'{"type": "take", "env_type": 5}', "invalid_message"),
        (b'{"type": "take"}', "invalid_message"),
        (b'{"type": "take", "env_type": "uv", "wait_s": "soon"}', "invalid_message"),
        (b'{"type": "take", "env_type": "uv", "keep": 1}', "invalid_message"),
        (b"[1, 2]", "invalid_message"),
        (b'{"env_type": "uv"}', "invalid_message"),
    ],
)
def test_bad_lines_are_errors(line: bytes, code: str) -> None:
    event = p.decode_line(line, p.REQUEST_TYPES)
    assert isinstance(event, p.ProtocolError)
    assert event.code == code
    assert p.Error.about(event).code == code


def test_wrong_field_type_names_the_field() -> None:
    event = p.decode_line(b'{"type": "take", "env_type": 5}', p.REQUEST_TYPES)
    assert isinstance(event, p.ProtocolError)
    assert "env_type" in event.message


def test_unknown_fields_are_tolerated_for_forward_compatibility() -> None:
    assert p.decode_line(b'{"type": "ping", "trace_id": "x"}', p.REQUEST_TYPES) == p.Ping()


def test_decoder_splits_and_joins_chunks() -> None:
    decoder = p.LineDecoder(p.REQUEST_TYPES)
    data = p.encode(p.Ping()) + p.encode(p.Take(env_type="uv"))
    events = []
    for i in range(len(data)):  # one byte at a time
        events += decoder.feed(data[i : i + 1])
    assert events == [p.Ping(), p.Take(env_type="uv")]
    assert decoder.pending == 0


def test_decoder_skips_blank_lines_and_crlf() -> None:
    assert p.LineDecoder(p.REQUEST_TYPES).feed(b'\n\r\n{"type":"ping"}\r\n') == [p.Ping()]


def test_overlong_line_is_one_error_and_never_buffered() -> None:
    decoder = p.LineDecoder(p.REQUEST_TYPES, max_line=100)
    events = decoder.feed(b"x" * 150)
    assert [e.code for e in events] == ["line_too_long"]
    for _ in range(100):  # the rest of the monster line keeps coming
        assert decoder.feed(b"y" * 1000) == []
        assert decoder.pending == 0
    # ... and the connection recovers at its end.
    assert decoder.feed(b'zzz\n{"type":"ping"}\n') == [p.Ping()]


def test_line_at_the_limit_is_accepted() -> None:
    line = b'{"type":"ping","pad":"' + b"a" * (p.MAX_LINE_BYTES - 30) + b'"}'
    assert len(line) <= p.MAX_LINE_BYTES
    assert p.LineDecoder(p.REQUEST_TYPES).feed(line + b"\n") == [p.Ping()]
    assert isinstance(p.decode_line(b"a" * (p.MAX_LINE_BYTES + 1), p.REQUEST_TYPES), p.ProtocolError)


def test_status_reply_decodes_as_reply_not_request() -> None:
    line = p.encode(next(r for r in REPLIES if isinstance(r, p.StatusReply))).rstrip(b"\n")
    assert isinstance(p.decode_line(line, p.REPLY_TYPES), p.StatusReply)
    assert p.decode_line(b'{"type":"status"}', p.REQUEST_TYPES) == p.Status()


# ---------------------------------------------------------------- hostile JSON (issue 10)

DEEP = b'{"type":"ping","x":' + b"[" * 5000 + b"]" * 5000 + b"}"
HUGE_INT = b'{"type":"take","env_type":"uv","wait_s":' + b"9" * 5000 + b"}"


@pytest.mark.parametrize(
    ("line", "needle"),
    [
        (DEEP, "nested too deeply"),
        (b"[" * 100_000, "invalid_json"),  # unterminated: any message will do
        (HUGE_INT, "number"),
        (b'{"type":"take","env_type":"uv","wait_s":NaN}', "NaN"),
        (b'{"type":"take","env_type":"uv","wait_s":-Infinity}', "Infinity"),
        (b'{"type":"take","env_type":"uv","wait_s":1e999}', "overflows"),
    ],
)
def test_hostile_json_is_an_invalid_json_error(line: bytes, needle: str) -> None:
    event = p.decode_line(line, p.REQUEST_TYPES, max_line=len(line))
    assert isinstance(event, p.ProtocolError) and event.code == "invalid_json"
    assert needle in event.message or needle == "invalid_json"
    assert len(event.message) <= 200


def _nested(depth: int, leaf: bytes) -> bytes:
    return b'{"a":' * depth + leaf + b"}" * depth


hostile_lines = st.one_of(
    st.binary(max_size=2048),
    st.builds(lambda d, leaf: _nested(d, leaf), st.integers(0, 4000), st.sampled_from([b"1", b"[]", b'"x"'])),
    st.builds(lambda d: b"[" * d + b"]" * d, st.integers(0, 20000)),
    st.builds(lambda n: b'{"type":"ping","n":' + b"7" * n + b"}", st.integers(1, 20000)),
    st.builds(lambda e: b'{"type":"take","env_type":"uv","wait_s":1e' + str(e).encode() + b"}", st.integers(-400, 400)),
)


@settings(max_examples=300, deadline=None)
@given(chunks=st.lists(hostile_lines, min_size=1, max_size=5), split=st.integers(1, 4096))
def test_decoder_survives_anything_and_recovers(chunks: list[bytes], split: int) -> None:
    """Every line becomes a message or a ProtocolError (never an exception), and a
    ping after the garbage is still decoded."""
    decoder = p.LineDecoder(p.REQUEST_TYPES)
    data = b"\n".join(chunks) + b'\n{"type":"ping"}\n'
    events: list[object] = []
    for i in range(0, len(data), split):
        events += decoder.feed(data[i : i + split])
    assert events and events[-1] == p.Ping()
    for event in events:
        assert isinstance(event, (p.ProtocolError, *p.REQUEST_TYPES.values()))
        if isinstance(event, p.ProtocolError):
            p.encode(p.Error.about(event))  # the error reply itself always encodes

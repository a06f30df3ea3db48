"""The client protocol's registry: each request names its replies, every name is registered (pure)."""

from __future__ import annotations

from typing import ClassVar

import pytest
from attrs import define

from runtimed.protocol import messages as p
from runtimed.protocol.framing import Message, registry


def _runtimed_subclasses(base: type) -> set[type]:
    found: set[type] = set()
    for cls in base.__subclasses__():
        if cls.__module__.startswith("runtimed."):
            found |= {cls, *_runtimed_subclasses(cls)}
    return found


def test_every_request_class_is_in_the_one_list() -> None:
    """A request defined but left out of messages.REQUESTS would be undecodable: fail here."""
    assert _runtimed_subclasses(p.Request) == set(p.REQUESTS)
    assert set(p.REQUEST_TYPES.values()) == set(p.REQUESTS)


@pytest.mark.parametrize("request_type", p.REQUESTS, ids=lambda c: c.TYPE)
def test_every_request_names_registered_replies(request_type: type[p.Request[object]]) -> None:
    assert request_type.REPLIES, f"{request_type.__name__} names no reply type"
    for reply in request_type.REPLIES:
        assert issubclass(reply, p.Reply)
        assert p.REPLY_TYPES[reply.TYPE] is reply


def test_replies_are_read_from_the_type_parameter() -> None:
    named = {cls: cls.REPLIES for cls in (p.Take, p.TakeKernel, p.Ping, p.Stats)}
    assert named == {
        p.Take: (p.EnvReply, p.Empty),
        p.TakeKernel: (p.KernelReply, p.Empty),
        p.Ping: (p.Pong,),
        p.Stats: (p.StatsReply,),
    }


def test_the_reply_list_is_what_requests_name_plus_error() -> None:
    named = {reply for cls in p.REQUESTS for reply in cls.REPLIES}
    assert set(p.REPLY_TYPES.values()) == named | {p.Error}
    assert _runtimed_subclasses(p.Reply) == set(p.REPLY_TYPES.values())


def test_two_messages_with_one_tag_are_refused() -> None:
    @define(frozen=True)
    class Other(Message):
        TYPE: ClassVar[str] = "ping"

    with pytest.raises(TypeError, match="share the tag 'ping'"):
        registry([p.Ping, Other])

"""Sets of extra packages, pure: their key, backoff and which sets are evicted."""

from __future__ import annotations

from pathlib import Path

import pytest

from runtimed.core.extras import WarmSet, choose_evictions, extras_key, normalise_requirements
from runtimed.core.failure import ErrorKind, Failure
from runtimed.core.records import Manifest, ReadyEnv
from runtimed.protocol.messages import REQUEST_TYPES, Take, decode_line


def test_the_same_packages_spelt_otherwise_are_one_set() -> None:
    key = extras_key("uv", ["Text_Unidecode", "six>=1.0"], [])
    assert extras_key("uv", ["six >= 1.0", "text-unidecode", "six>=1.0"], []) == key
    assert extras_key("conda", ["Text_Unidecode", "six>=1.0"], []) != key
    assert extras_key("uv", ["six>=1.0"], []) != key
    assert extras_key("conda", ["numpy"], ["a", "b"]) != extras_key("conda", ["numpy"], ["b", "a"])  # priority
    assert normalise_requirements(["Foo.Bar[Baz]>=1"]) == ["foo-bar[baz]>=1"]


def test_options_are_part_of_the_set_and_no_options_keep_the_old_key() -> None:
    key = extras_key("uv", ["six"], [])
    assert extras_key("uv", ["six"], [], {"requires_python": None, "exclude_newer": None}) == key
    stamped = extras_key("uv", ["six"], [], {"exclude_newer": "2025-01-02T00:00:00Z"})
    assert stamped != key and stamped != extras_key("uv", ["six"], [], {"exclude_newer": "2025-01-03T00:00:00Z"})


def test_a_conda_spec_is_kept_as_written_and_an_empty_one_refused() -> None:
    assert normalise_requirements(["numpy=1.26", " numpy=1.26 ", "rt-hello  1.0.*"]) == ["numpy=1.26", "rt-hello 1.0.*"]
    with pytest.raises(ValueError, match="empty"):
        normalise_requirements(["six", " "])


def test_failures_back_off_and_a_success_clears_them() -> None:
    warm = WarmSet(key="k", packages=("six",))
    failure = Failure(ErrorKind.NETWORK, "down")
    warm.failed(failure, 100.0)
    assert warm.backing_off(105.0) and not warm.backing_off(111.0)
    warm.failed(failure, 111.0)
    assert warm.backing_off(125.0)  # the second failure waits longer
    warm.succeeded()
    assert not warm.backing_off(111.0) and warm.failure is None


def _set(key: str, size: int = 0, installing: bool = False) -> WarmSet:
    warm = WarmSet(key=key, packages=(key,), installing=installing)
    if size:
        path = Path("/envs") / key
        manifest = Manifest(env_type="uv", id=key, spec_hash="h", python_path=str(path / "bin/python"))
        warm.ready.append(ReadyEnv(path=path, manifest=manifest))
        warm.sizes[path] = size
    return warm


def test_evictions_take_the_least_recently_used_first_within_both_bounds() -> None:
    a, b, c = _set("a", 10), _set("b", 10), _set("c", 10)
    assert choose_evictions([a, b, c], max_sets=2, max_bytes=100) == [a]
    assert choose_evictions([a, b, c], max_sets=5, max_bytes=15) == [a, b]
    assert choose_evictions([a, b, c], max_sets=3, max_bytes=30) == []


def test_a_set_installing_and_the_one_just_used_are_never_evicted() -> None:
    a, b, c = _set("a", installing=True), _set("b", 10), _set("c", 10)
    assert choose_evictions([a, b, c], max_sets=1, max_bytes=0, keep="c") == [b]


def test_a_take_without_packages_is_todays_take_on_the_wire() -> None:
    decoded = decode_line(b'{"type": "take", "env_type": "uv"}', REQUEST_TYPES)
    assert decoded == Take(env_type="uv") and decoded.packages == [] and decoded.channels == []


def test_a_set_with_takes_waiting_is_not_evicted() -> None:
    a, b = _set("a", 10), _set("b", 10)
    a.waiting = 1
    assert choose_evictions([a, b], max_sets=0, max_bytes=0) == [b]

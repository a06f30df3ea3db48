"""``runtimed config path|show|get|set``: inspect and edit the configuration file."""

from __future__ import annotations

import argparse
import sys
from typing import Any

import tomlkit
from tomlkit.exceptions import TOMLKitError

from runtimed.config import ConfigError, load_config, parse_config, tomllib
from runtimed.envs.plugins import discover_plugins
from runtimed.protocol.messages import unstructure
from runtimed.util.files import write_text_atomic

from ._util import paths_from, print_json


def add_parser(subparsers: Any, common: argparse.ArgumentParser) -> None:
    p = subparsers.add_parser(
        "config",
        help="show or edit the configuration",
        description="Show or edit the TOML configuration. A running daemon applies changes to the file "
        "within a few seconds (or at once on SIGHUP); a broken edit is reported and the previous config "
        "stays in force.",
    )
    p.set_defaults(func=lambda args: (p.print_help(), 2)[1])
    sub = p.add_subparsers(dest="config_command", metavar="SUBCOMMAND")
    cfg = argparse.ArgumentParser(add_help=False)
    cfg.add_argument("--config", metavar="FILE", help="config file (default: $RUNTIMED_CONFIG or the platform path)")
    sub.add_parser("path", parents=[cfg], help="print the config file's path").set_defaults(func=cmd_path)
    show = sub.add_parser("show", parents=[cfg], help="print the effective config, defaults included")
    show.add_argument("--json", action="store_true", help="as JSON")
    show.set_defaults(func=cmd_show)
    get = sub.add_parser("get", parents=[cfg], help="print one value, e.g. backends.uv.pool_size")
    get.add_argument("key")
    get.set_defaults(func=cmd_get)
    set_ = sub.add_parser(
        "set",
        parents=[cfg],
        help="set one value in the file, e.g. backends.uv.pool_size 3",
        description='Set KEY to VALUE in the config file. VALUE is read as TOML (3, true, ["numpy"]) and '
        "otherwise taken as a string (12h). The whole file is validated before it is written. "
        "Comments in the file are not preserved.",
    )
    set_.add_argument("key")
    set_.add_argument("value")
    set_.set_defaults(func=cmd_set)


def _effective(args: argparse.Namespace) -> dict[str, Any]:
    config = load_config(paths_from(args).config_file)
    for name in discover_plugins():  # show installed backends with their defaults too
        config = config.with_backend(name) if name not in config.backends else config
    data: dict[str, Any] = unstructure(config)
    for name, backend in config.backends.items():  # defaults that follow other keys, as in force
        data["backends"][name].update(kernels=backend.kernel_target, preimported=backend.preimported_target)
    return data


def _lookup(data: dict[str, Any], key: str) -> Any:
    node: Any = data
    for part in key.split("."):
        if not isinstance(node, dict) or part not in node:
            raise KeyError(key)
        node = node[part]
    return node


def _guarded(fn: Any) -> Any:
    def run(args: argparse.Namespace) -> int:
        try:
            return int(fn(args))
        except ConfigError as exc:
            print(f"runtimed: {exc}", file=sys.stderr)
            return 2
        except KeyError as exc:
            print(f"runtimed: no config key {exc.args[0]!r}", file=sys.stderr)
            return 2

    return run


@_guarded
def cmd_path(args: argparse.Namespace) -> int:
    print(paths_from(args).config_file)
    return 0


@_guarded
def cmd_show(args: argparse.Namespace) -> int:
    data = _effective(args)
    if args.json:
        print_json(data)
    else:
        print(f"# {paths_from(args).config_file}\n" + dumps(data), end="")
    return 0


@_guarded
def cmd_get(args: argparse.Namespace) -> int:
    value = _lookup(_effective(args), args.key)
    print(_inline(value) if not isinstance(value, dict) else dumps(value).rstrip())
    return 0


@_guarded
def cmd_set(args: argparse.Namespace) -> int:
    """Change one key in place: comments, order and formatting of the file are kept (tomlkit)."""
    path = paths_from(args).config_file
    try:
        doc = tomlkit.parse(path.read_text(encoding="utf-8")) if path.exists() else tomlkit.document()
    except TOMLKitError as exc:
        raise ConfigError(f"invalid TOML in {path}: {exc}") from exc
    try:
        value = tomllib.loads(f"v = {args.value}")["v"]
    except tomllib.TOMLDecodeError:
        value = args.value
    parts = args.key.split(".")
    node: Any = doc
    for part in parts[:-1]:
        if part not in node:
            node[part] = tomlkit.table()
        node = node[part]
        if not isinstance(node, dict):
            raise ConfigError(f"{args.key}: {part} is not a table")
    node[parts[-1]] = value
    parse_config(doc.unwrap(), str(path))  # refuse to write a config the daemon would reject
    path.parent.mkdir(parents=True, exist_ok=True)
    write_text_atomic(path, tomlkit.dumps(doc))
    print(f"set {args.key} = {_inline(value)} in {path}")
    return 0


def _without_none(data: Any) -> Any:
    """TOML has no null: leave unset (None) values out."""
    if isinstance(data, dict):
        return {k: _without_none(v) for k, v in data.items() if v is not None}
    return data


def dumps(data: dict[str, Any]) -> str:
    return tomlkit.dumps(_without_none(data))


def _inline(value: Any) -> str:
    text: str = tomlkit.item(value).as_string()
    return text


__all__ = ["add_parser"]

"""``from runtimed.plugins import hookimpl``: kept for plugins written against earlier
runtimed versions. New plugins import everything from :mod:`runtimed.backend`."""

from runtimed.backend import hookimpl

__all__ = ["hookimpl"]

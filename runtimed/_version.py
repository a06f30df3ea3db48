"""The version of runtimed (one place)."""

__version__ = "0.1.0"

"""The pure core: records, failures, backoff, build phases, the usage model and the pool and GC
planners. Nothing here does I/O or imports anything of runtimed outside ``runtimed.core``."""

"""Wire formats, sans-IO: NDJSON framing, the client protocol (messages, records, stats),
the worker jobs, and version checks."""

"""Wire formats, sans-IO: the client protocol (messages, records, stats, framing), the
worker jobs, and version checks."""

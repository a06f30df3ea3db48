"""The daemon (``runtimed run``): entry, socket server, supervisor, builder, hand-out,
start-up adoption, housekeeping, reconfiguration, config watching, the lease table, the
status and stats views. It never imports the client."""

"""Environments on disk: the env dir, one build, warm-up, running a backend's tools,
plugin loading, bytecode (compile, store), lease holders."""

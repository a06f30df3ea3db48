"""Utilities with I/O that every layer may use: files, process trees and liveness, paths,
peer credentials, the log file, background tasks, the singleton lock."""

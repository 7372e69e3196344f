"""Benchmarks that print numbers (speed, accuracy); targets are checked by reading them, never by timed tests."""

"""Benchmarks: measured figures with the command that reruns them (`python -m benchmarks NAME`)."""

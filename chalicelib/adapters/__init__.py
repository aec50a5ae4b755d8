"""Adapters: the ports of the stages implemented for AWS (``aws``, boto3) and in memory (``memory``).

boto3 is imported here and nowhere in the stages. Every port has both implementations, and one shared
test suite per port (tests/adapters) runs against both, so the in-memory one cannot drift from the
real thing. ``chalicelib.bootstrap`` wires the AWS adapters once per process.
"""

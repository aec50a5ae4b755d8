"""In-memory adapters: the same ports, the same conditional-write semantics, no AWS.

Service tests run on them (milliseconds each); each is thread-safe, because the services rely on
conditional writes to stay correct under concurrent deliveries.
"""

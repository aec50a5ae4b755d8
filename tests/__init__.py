"""The suite, one folder per layer; the cheap layers form the inner loop (`make check`).

* ``unit``: the pure domain: no moto, no AWS, no processes, no sockets (random order).
* ``service``: services and entry points on in-memory adapters, without moto (random order).
* ``adapters``: the boto3 stores and adapters on in-process moto (random order).
* ``flow``: stages wired together: the app through chalice's test client on in-process moto, the event
  runtime and the local cloud on a moto server.
* ``e2e``: the CLI and the demo as separate processes.
* ``deploy``: what gets deployed: the template, policies, scans, the Lambda package and its imports.

Fixtures are in conftest.py (the root one sets fake credentials before anything imports boto3);
helpers shared between modules are in support.py: no test module imports another.
"""

"""serverless-mlops: everything the Lambda functions import.

Layers (docs/ARCHITECTURE.md; `make lint` enforces them): ``entrypoints`` (one Chalice blueprint per
area) -> ``bootstrap`` (wiring) -> ``adapters`` (boto3, local processes, in memory) -> the stages
(``ingest``, ``validation``, ``training``, ``registry``, ``serving``, ``batch``, and ``auth`` for the
API tokens: pure domain, ports, services) -> the shared kernel (``errors``, ``settings``,
``timeutil``, ``http``, ``s3events``, ``observability``, ``notify``).
"""

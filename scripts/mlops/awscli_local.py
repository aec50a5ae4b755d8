"""An AWS CLI (v1) plugin that lets ``AWS_ENDPOINT_URL`` reach every service, ``aws sqs`` included.

The AWS CLI v1 sends a few services (``sqs``, ``emr``, ``rds``, ``docdb``, ``neptune``, ``health``)
to a fixed host, e.g. ``https://queue.amazonaws.com`` for SQS in us-east-1, whenever
``--endpoint-url`` is not on the command line (``awscli/customizations/overridesslcommonname.py``).
It sets that host as if the user had typed it, and a typed endpoint outranks the configured ones,
so ``AWS_ENDPOINT_URL`` and ``AWS_ENDPOINT_URL_SQS`` never apply: with the local cloud's exports,
``aws s3`` and ``aws dynamodb`` reached it but ``aws sqs`` went to AWS.

``mlops env`` points ``AWS_CONFIG_FILE`` at a config whose ``[plugins]`` section loads this module
(``local_config``): before the CLI picks its fixed host, the configured endpoint (the service's own
variable first, as the SDKs read them) is taken as the typed one. A real ``--endpoint-url`` still
wins; without an endpoint variable nothing changes. The module must be importable by the CLI's
Python: the project's ``.venv/bin/aws``, where ``mlops`` is installed.
"""

from __future__ import annotations

import os
from typing import Any

PLUGIN_NAME = "mlops_local_endpoints"


def awscli_initialize(cli: Any) -> None:
    # Plugins initialise before the CLI's own handlers register: registered in the middle section,
    # this runs before its fixed-host handler (registered last) on the same event.
    cli.register("before-building-argument-table-parser", use_configured_endpoint)


def use_configured_endpoint(parsed_globals: Any, **kwargs: Any) -> None:
    if getattr(parsed_globals, "endpoint_url", None) is not None:
        return
    endpoint = configured_endpoint(str(getattr(parsed_globals, "command", "")), os.environ)
    if endpoint:
        parsed_globals.endpoint_url = endpoint


def configured_endpoint(service: str, environ: Any) -> str | None:
    """The endpoint the environment configures for ``service``: ``AWS_ENDPOINT_URL_<SERVICE>``
    (upper case, dashes as underscores), else ``AWS_ENDPOINT_URL``; None when neither is set or the
    environment says to ignore them (``AWS_IGNORE_CONFIGURED_ENDPOINT_URLS``)."""
    if str(environ.get("AWS_IGNORE_CONFIGURED_ENDPOINT_URLS", "")).lower() == "true":
        return None
    specific = f"AWS_ENDPOINT_URL_{service.upper().replace('-', '_')}"
    return environ.get(specific) or environ.get("AWS_ENDPOINT_URL") or None


def local_config(region: str) -> str:
    """The AWS CLI config the local cloud's shell uses: its region and this plugin."""
    return f"[default]\nregion = {region}\n\n[plugins]\n{PLUGIN_NAME} = {__name__}\n"

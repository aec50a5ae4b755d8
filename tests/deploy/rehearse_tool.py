"""The deploy's tools (``aws``, ``chalice-deploy``) as the resume rehearsal runs them against a moto
server: ``python -m tests.deploy.rehearse_tool <tool> <args...>``.

What differs from a real deploy, and why (each a gap of moto, not of the deploy):

* moto imports only OpenAPI 3 REST APIs and needs ``info.description``; Chalice sends Swagger 2.0.
  The document is converted on its way to moto (paths, integrations and authorizers unchanged).
* moto's CloudFormation fails on a KMS key's ``Tags`` and skips some bucket and table settings: the
  data-plane template goes through ``mlops.cfn._moto_body`` and ``apply_moto_gaps`` afterwards, as
  the local cloud's does. moto refuses an empty change set ("No updates are to be performed") where
  AWS makes one that ``--no-fail-on-empty-changeset`` accepts: taken as AWS would.

And one addition: ``REHEARSAL_FAIL_AT=<Operation>[#n]`` makes the first (n-th) call of that AWS
operation in this process raise, the way a throttled call or a dropped connection stops a real deploy midway.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import sys
import tempfile
from pathlib import Path
from typing import Any


class InjectedFailure(RuntimeError):
    """The failure the rehearsal asked for."""


def fail_at(where: str) -> Any:
    """A botocore ``before-call`` handler raising at the first call of an operation
    (``"ExecuteChangeSet"``) or at its n-th (``"DescribeStacks#2"``)."""
    operation, _, nth = where.partition("#")
    seen: list[bool] = []
    fired: list[bool] = []

    def handler(model: Any, **_: Any) -> None:
        if model.name != operation or fired:
            return
        seen.append(True)
        if len(seen) == int(nth or 1):
            fired.append(True)
            raise InjectedFailure(f"rehearsal: {where} failed (injected)")

    handler.fired = fired  # type: ignore[attr-defined]
    return handler


def _install_failure() -> None:
    operation = os.environ.get("REHEARSAL_FAIL_AT")
    if not operation:
        return
    import botocore.session

    handler = fail_at(operation)
    original = botocore.session.Session.__init__

    def init(self: Any, *args: Any, **kwargs: Any) -> None:
        original(self, *args, **kwargs)
        self.register("before-call", handler)

    botocore.session.Session.__init__ = init  # type: ignore[method-assign]


def openapi3(doc: dict[str, Any]) -> dict[str, Any]:
    """Chalice's Swagger 2.0 document as the OpenAPI 3 document moto can import."""
    doc = json.loads(json.dumps(doc).replace("#/definitions/", "#/components/schemas/"))
    doc.pop("swagger", None)
    for key in ("schemes", "host", "basePath", "consumes", "produces"):
        doc.pop(key, None)
    doc["openapi"] = "3.0.1"
    doc["info"] = {"description": "", **doc.get("info", {})}
    components = doc.setdefault("components", {})
    if "securityDefinitions" in doc:
        components["securitySchemes"] = doc.pop("securityDefinitions")
    if "definitions" in doc:
        components["schemas"] = doc.pop("definitions")
    for item in doc.get("paths", {}).values():
        for operation in item.values():
            if not isinstance(operation, dict):
                continue
            for parameter in operation.get("parameters", []):
                if "type" in parameter:
                    parameter["schema"] = {"type": parameter.pop("type")}
            operation.pop("consumes", None)
            operation.pop("produces", None)
            for response in operation.get("responses", {}).values():
                if "schema" in response:
                    response["content"] = {"application/json": {"schema": response.pop("schema")}}
    return doc


def _chalice_deploy(args: list[str]) -> int:
    from chalice import awsclient

    from mlops import chalicedeploy

    imported, updated = (
        awsclient.TypedAWSClient.import_rest_api,
        awsclient.TypedAWSClient.update_api_from_swagger,
    )

    def import_rest_api(self: Any, swagger_document: dict[str, Any], endpoint_type: str) -> str:
        return imported(self, openapi3(swagger_document), endpoint_type)

    def update_api_from_swagger(self: Any, rest_api_id: str, swagger_document: dict[str, Any]) -> None:
        updated(self, rest_api_id, openapi3(swagger_document))

    awsclient.TypedAWSClient.import_rest_api = import_rest_api  # type: ignore[method-assign]
    awsclient.TypedAWSClient.update_api_from_swagger = update_api_from_swagger  # type: ignore[method-assign]
    return chalicedeploy.main(args)


def _aws(args: list[str]) -> int:
    from awscli.clidriver import create_clidriver

    def aws_main(arguments: list[str]) -> int:
        return int(create_clidriver().main(arguments))

    if args[:2] != ["cloudformation", "deploy"]:
        return int(aws_main(args))
    template = Path(args[args.index("--template-file") + 1])
    name = args[args.index("--stack-name") + 1]
    parameters = {}
    if "--parameter-overrides" in args:
        for item in args[args.index("--parameter-overrides") + 1 :]:
            if item.startswith("--"):
                break
            key, _, value = item.partition("=")
            parameters[key] = value
    from mlops import cfn

    with tempfile.TemporaryDirectory() as tmp:
        body = Path(tmp) / template.name
        body.write_text(cfn._moto_body(template))
        at = args.index("--template-file") + 1
        errors = io.StringIO()
        with contextlib.redirect_stderr(errors):
            code = int(aws_main([*args[:at], str(body), *args[at + 1 :]]))
        sys.stderr.write(errors.getvalue())
        if (
            code
            and "No updates are to be performed" in errors.getvalue()
            and "--no-fail-on-empty-changeset" in args
        ):
            code = 0  # moto refuses an empty change set; AWS makes one, which that flag accepts
    if code == 0 and "Resources" in json.loads(template.read_text()) and name.endswith("-data-plane"):
        import boto3

        session = boto3.session.Session()
        resources = {
            r["LogicalResourceId"]: r.get("PhysicalResourceId", "")
            for r in session.client("cloudformation").list_stack_resources(StackName=name)[
                "StackResourceSummaries"
            ]
        }
        cfn.apply_moto_gaps(session, cfn.load_template(template), resources, parameters)
    return code


def main(argv: list[str]) -> int:
    _install_failure()
    tool, args = argv[0], argv[1:]
    if tool == "chalice-deploy":
        return _chalice_deploy(args)
    if tool == "aws":
        return _aws(args)
    if tool == "chalice":
        from chalice.cli import main as chalice_main

        sys.argv = ["chalice", *args]
        try:
            return int(chalice_main() or 0)
        except SystemExit as exit_:  # click's standalone mode
            return int(exit_.code or 0)
    raise SystemExit(f"unknown tool {tool}")


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

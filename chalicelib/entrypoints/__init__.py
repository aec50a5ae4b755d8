"""Entry points of the Lambda functions: one Chalice blueprint per area, registered by ``app.py``.

Each module parses what arrives (an HTTP request, an SQS batch, a schedule tick), calls the area's
service and answers; errors of the project's hierarchy (``chalicelib.errors``) become HTTP answers in
one place (``blueprint.Area``). Stage modules are imported inside the handlers, so a function pays
at cold start only for the stage it runs (the API function answering /predict never imports the
validator or the evaluator), and mypy still checks every call.
"""

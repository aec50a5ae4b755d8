"""serverless-mlops: everything the Lambda functions import.

The core (validation rules, policies, statistics) is plain Python on plain data; boto3 lives in
small adapters (``chalicelib.adapters.aws`` and each stage's ``store`` module).
"""

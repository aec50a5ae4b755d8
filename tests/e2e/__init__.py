"""End to end as a user runs it: `mlops up`, the AWS CLI and `mlops demo` as separate processes.
(tests/test_e2e.py moves here.)"""

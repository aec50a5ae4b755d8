"""Batch scoring workers (the job image): ``python -m scoring.worker --job-id J``."""

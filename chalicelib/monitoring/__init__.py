"""Monitoring models in production: per window, drift of live inputs and predictions against the
champion's training reference, input quality, volume, errors, latency and, once outcomes arrive,
the primary metric with a confidence interval; sustained breaches become retrain triggers.

Pure statistics (``window``, ``performance``, ``breach``, ``join``) and the service that runs them
over the captured records (``service``, through the ports in ``ports``).
"""

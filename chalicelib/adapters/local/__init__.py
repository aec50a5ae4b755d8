"""Local adapters: what the local cloud (``mlops up``) uses where AWS would run a job on Batch.

moto registers Batch jobs but runs nothing, so locally a job is a child process of the same entry
point the job image runs, with the local cloud's endpoint and names in its environment.
"""

"""Progressive delivery's judge: the guards that compare a rollout's candidate with the champion on
the same captured requests (``guards``), and the scheduled evaluator that steps, completes or aborts
each running rollout through the registry (``service``). The rollout's state and its rules are the
registry's (``chalicelib.registry.rollout``); which version answers a request is serving's
(``chalicelib.serving.routing``). docs/rollouts.md tells the whole story."""

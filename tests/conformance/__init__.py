"""The conformance suite: the same checks over every registered plugin, controller and scenario."""

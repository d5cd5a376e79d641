"""A bank account service: evolving events, snapshots, read models and the runbook."""

"""Which model a run uses: the registry of model versions (pending, serving, rollback,
prune) and the pinning of one version on the driver."""

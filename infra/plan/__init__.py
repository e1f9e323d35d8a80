"""The offline plan: run the real program under Pulumi mocks, record what it would create."""

"""Stack configuration: the strict model and the loader that validates a stack file once."""

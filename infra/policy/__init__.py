"""Policy: route patterns, the compiled per-gateway policy documents and the access matrix."""

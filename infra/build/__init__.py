"""The Worker build: render `worker_templates/` with Jinja2, bundle with esbuild, write artifacts."""

"""Reviewing a change: the semantic diff of two plans (`diff`), its Markdown rendering
(`markdown`), route-pattern coverage (`coverage`) and where plans come from (`sources`)."""

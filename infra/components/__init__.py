"""Pulumi components: each turns a plan from the pure planners into resources, nothing more."""

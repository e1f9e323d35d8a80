"""Airflow on Kubernetes, pre-wired to the gateways: pure planners (connections, Helm values,
Kubernetes objects, tunnel) and the components that turn those plans into resources."""

"""`airgate verify`: the access matrix as live probes against a running edge, compared with the
compiled policy (probes.py decides them, run.py sends them to each gateway's decision endpoint)."""

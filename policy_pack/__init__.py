"""The airgate CrossGuard policy pack (see PulumiPolicy.yaml and airgate_pack.py)."""

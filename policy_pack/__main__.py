"""Entry point the Pulumi engine runs for `--policy-pack policy_pack`: serves the airgate rules."""

from __future__ import annotations

import sys
from pathlib import Path

# The engine starts this file from policy_pack/; the rules live in the project's infra/ package.
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from pulumi_policy import EnforcementLevel, PolicyPack

from policy_pack.airgate_pack import PACK_NAME, policies

PolicyPack(name=PACK_NAME, policies=policies(), enforcement_level=EnforcementLevel.MANDATORY)

"""What a plan document writes in place of values it must not or cannot show. Kept free of Pulumi
imports so the rules and the diff can read plans without loading the engine."""

from __future__ import annotations

MASK = "[secret]"
UNKNOWN = "[unknown]"

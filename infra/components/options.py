"""Pulumi resource options from a plan's `Protection`, shared by every component that protects a
resource, so `protect` and `retain_on_delete` are spelled one way."""

from __future__ import annotations

from typing import Any

import pulumi

from infra.stack_plan import Protection


def options(parent: pulumi.Resource, protection: Protection, **extra: Any) -> pulumi.ResourceOptions:
    return pulumi.ResourceOptions(
        parent=parent,
        protect=protection.protect,
        # None, not False: an unprotected resource's options stay Pulumi's defaults.
        retain_on_delete=protection.retain_on_delete or None,
        **extra,
    )

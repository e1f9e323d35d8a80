"""What a cluster without nodes or controllers needs from the Pulumi program, and nothing else.

The engine and chart tiers run a real kube-apiserver with no scheduler, no controller manager and
no nodes: it decides what it accepts, and nothing ever runs. pulumi-kubernetes waits for each
workload to become ready and deletes in the foreground (the garbage collector, a controller,
finishes that), so both would wait forever. One resource transform sets the provider's two
documented switches on every Kubernetes object (pulumi-kubernetes docs, "Resource annotations"):
`pulumi.com/skipAwait: "true"` and `pulumi.com/deletionPropagationPolicy: "background"`.
Importing this module registers the transform; the tiers import it ahead of the program.
"""

from __future__ import annotations

from typing import Any, cast

import pulumi

NO_CONTROLLERS = {"pulumi.com/skipAwait": "true", "pulumi.com/deletionPropagationPolicy": "background"}


def without_controllers(args: pulumi.ResourceTransformArgs) -> pulumi.ResourceTransformResult | None:
    if not args.custom or not args.type_.startswith("kubernetes:"):
        return None
    props = dict(args.props)
    metadata: dict[str, Any] = dict(cast(dict[str, Any], props.get("metadata") or {}))
    metadata["annotations"] = {**(metadata.get("annotations") or {}), **NO_CONTROLLERS}
    props["metadata"] = metadata
    return pulumi.ResourceTransformResult(props, args.opts)


pulumi.runtime.register_resource_transform(without_controllers)

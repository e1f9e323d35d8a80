"""Which input changes make a provider replace a resource rather than update it, per resource kind.

One table, read by `airgate diff` (a replacement of a protected or data-holding resource is
critical) and by the provider plugins the engine tiers run where the real provider cannot be built
(local_services/providers: their Diff answers the engine from it). Pulumi-free, so both can import it.
"""

from __future__ import annotations

# Cloudflare: the provider's RequiresReplace properties (terraform-provider-cloudflare v5,
# internal/services/<resource>/schema.go, stringplanmodifier.RequiresReplace; LogpushJob's
# `dataset` is RequiresReplaceIfConfigured, and the program always sets it). Kubernetes: an
# object's identity is its name (and namespace); pulumi-kubernetes replaces on a change of either.
# Property names are as Pulumi shows inputs: camelCase, nested ones dotted.
REPLACE_ON: dict[str, frozenset[str]] = {
    "WorkersScript": frozenset({"accountId", "scriptName"}),
    "WorkersKvNamespace": frozenset({"accountId"}),
    "WorkersKv": frozenset({"accountId", "namespaceId", "keyName"}),
    "WorkersCustomDomain": frozenset({"accountId", "hostname", "service"}),
    "WorkersRoute": frozenset({"zoneId"}),
    "ZeroTrustAccessApplication": frozenset({"accountId", "zoneId"}),
    "ZeroTrustAccessPolicy": frozenset({"accountId"}),
    "ZeroTrustAccessServiceToken": frozenset({"accountId", "zoneId"}),
    "ZeroTrustAccessIdentityProvider": frozenset({"accountId", "zoneId", "type"}),
    "ZeroTrustTunnelCloudflared": frozenset({"accountId"}),
    "ZeroTrustTunnelCloudflaredConfig": frozenset({"accountId", "tunnelId"}),
    "DnsRecord": frozenset({"zoneId", "type"}),
    "LogpushJob": frozenset({"accountId", "zoneId", "dataset"}),
    # pulumi-random: every input forces a new value (terraform-provider-random: each attribute of
    # random_password and random_bytes is RequiresReplace).
    "RandomPassword": frozenset(
        {
            "length",
            "special",
            "upper",
            "lower",
            "numeric",
            "number",
            "minLower",
            "minUpper",
            "minNumeric",
            "minSpecial",
            "overrideSpecial",
            "keepers",
        }
    ),
    "RandomBytes": frozenset({"length", "keepers"}),
    "Namespace": frozenset({"metadata.name"}),
    "Service": frozenset({"metadata.name", "metadata.namespace"}),
}

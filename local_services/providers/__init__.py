"""Pulumi resource provider plugins for the providers this machine cannot build.

The Go module proxy refuses `pulumi-cloudflare` and `pulumi-random` (403 "This module version is not
available"), so the engine tiers run these instead: real plugins that speak Pulumi's provider gRPC
protocol (the Python SDK's own stubs) to the real engine. `cloudflare` turns each resource into the
Cloudflare API calls the official `cloudflare` library makes, against whatever `cloudflare:baseUrl`
names (the emulator in tests); `random` makes the values pulumi-random would. Neither is ever put
where a user's `pulumi up` would find it: tests put their launchers on PATH for their own runs.
"""

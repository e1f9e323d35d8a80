"""The API's resources, one module per area; importing this package registers every route."""

from local_services.cloudflare_api.resources import (  # noqa: F401
    access,
    directory,
    dns,
    hostnames,
    kv,
    logpush,
    scripts,
    service_tokens,
    tunnels,
)

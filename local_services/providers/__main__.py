"""`python -m local_services.providers cloudflare|random`: serve one provider plugin to the engine
(it passes its own address as the last argument; these providers never call back)."""

from __future__ import annotations

import sys

from local_services.providers.server import Provider, serve


def main(argv: list[str]) -> None:
    name = argv[0] if argv else ""
    if name == "random":
        from local_services.providers.random_resources import random_types

        serve(Provider("random", "4.21.4", random_types))
    elif name == "cloudflare":
        from local_services.providers.cloudflare_resources import cloudflare_types

        serve(Provider("cloudflare", "6.23.1", cloudflare_types))
    else:
        sys.exit("usage: python -m local_services.providers cloudflare|random ENGINE_ADDRESS")


if __name__ == "__main__":
    main(sys.argv[1:])

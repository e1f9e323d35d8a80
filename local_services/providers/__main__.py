"""`python -m local_services.providers cloudflare|random`: serve one provider plugin to the engine
(it passes its own address as the last argument; these providers never call back). Each reports the
version of the SDK package installed beside it, the version that SDK asks the engine for."""

from __future__ import annotations

import sys
from importlib.metadata import version

from local_services.providers.server import Provider, serve


def main(argv: list[str]) -> None:
    name = argv[0] if argv else ""
    if name == "random":
        from local_services.providers.random_resources import random_tables

        serve(Provider("random", version("pulumi_random"), random_tables))
    elif name == "cloudflare":
        from local_services.providers.cloudflare_resources import cloudflare_tables

        serve(Provider("cloudflare", version("pulumi_cloudflare"), cloudflare_tables))
    else:
        sys.exit("usage: python -m local_services.providers cloudflare|random ENGINE_ADDRESS")


if __name__ == "__main__":
    main(sys.argv[1:])

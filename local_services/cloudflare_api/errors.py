"""Cloudflare's error answers: an HTTP status with `errors[{code, message}]` in the envelope.

The codes are the ones Cloudflare answers, each with where it was seen; where no public source
names a code for a refusal, the comment at the raise site says so and which code stands in."""

from __future__ import annotations

from typing import Any


class ApiError(Exception):
    """One refused request: nothing was written."""

    def __init__(
        self,
        status: int,
        code: int,
        message: str,
        chain: list[dict[str, Any]] | None = None,
        also: list[dict[str, Any]] | None = None,
    ) -> None:
        super().__init__(f"{message} ({code})")
        self.status = status
        self.code = code
        self.message = message
        self.chain = chain
        self.also = also or []

    def errors(self) -> list[dict[str, Any]]:
        """The envelope's `errors`: this error first (with its `error_chain`), then any that go with it."""
        entry: dict[str, Any] = {"code": self.code, "message": self.message}
        if self.chain:
            entry["error_chain"] = self.chain
        return [entry, *self.also]


# Authentication (cloudflare/cloudflare-python#2678 and xiaotianxt/bypass-cloudflare-for-github-action#2:
# no credentials → 400 9106; Ultimate-Multisite/ultimate-multisite#73: a malformed Authorization header →
# 400 6003 with 6111 in the chain; cloudflare/pages-action#112 and hieunc229/mailflare#1: a token the API
# does not accept → 403 10000 "Authentication error").
def missing_credentials() -> ApiError:
    return ApiError(400, 9106, "Missing X-Auth-Key, X-Auth-Email or Authorization headers")


def malformed_authorization() -> ApiError:
    return ApiError(
        400,
        6003,
        "Invalid request headers",
        [{"code": 6111, "message": "Invalid format for Authorization header"}],
    )


def authentication_error() -> ApiError:
    return ApiError(403, 10000, "Authentication error")


# A body that is not JSON (undefinedplayer/cloudflare-ddns#10: 400 6007 "Malformed JSON in request body").
def malformed_json() -> ApiError:
    return ApiError(400, 6007, "Malformed JSON in request body")


# Paths the API cannot route, or whose identifier names nothing it knows: HTTP 400 with two errors,
# 7003 "Could not route to /client/v4/..., perhaps your object identifier is invalid?" and 7000 "No route
# for that URI" (cloudflare/cloudflare-go#118, zanjie1999/cloudflare-api-v4-ddns#4,
# timothymiller/cloudflare-ddns#152 for the /client/v4 prefix in the message).
def no_route(path: str) -> ApiError:
    return ApiError(
        400,
        7003,
        f"Could not route to /client/v4{path}, perhaps your object identifier is invalid?",
        also=[{"code": 7000, "message": "No route for that URI"}],
    )


unknown_identifier = no_route


# No public source shows the answer to a known path with a method it does not take; 405 with 7001
# ("Method not allowed for this URI") stands in.
def method_not_allowed() -> ApiError:
    return ApiError(405, 7001, "Method not allowed for this URI")

"""The `random` provider's two resource types the program uses, made as pulumi-random makes them:
RandomPassword (`result`, from the character classes asked for) and RandomBytes (`base64`, `hex`).
Every input of both forces a new value, so any change replaces (infra/review/replacements.py)."""

from __future__ import annotations

import base64
import secrets
import string
from collections.abc import Mapping
from typing import Any

from infra.review.replacements import REPLACE_ON
from local_services.providers.server import Created, ProviderError, Tables

# terraform-provider-random internal/random/string.go: the default special characters.
DEFAULT_SPECIAL = "!@#$%&*()-_=+[]{}<>:?"


class _StateOnly:
    """A value that lives only in Pulumi's state: nothing to read back or delete, and an update
    (which only a changed input not in `replace_on` could cause) keeps the value made at create."""

    computed: tuple[str, ...] = ()

    def read(self, id_: str, state: dict[str, Any]) -> dict[str, Any] | None:
        return state

    def update(self, id_: str, state: dict[str, Any], news: dict[str, Any]) -> dict[str, Any]:
        return {k: state[k] for k in self.computed if k in state}

    def delete(self, id_: str, state: dict[str, Any]) -> None:
        return None


class RandomPassword(_StateOnly):
    replace_on = REPLACE_ON["RandomPassword"]
    computed = ("result", "bcryptHash")

    def create(self, inputs: dict[str, Any]) -> Created:
        length = int(inputs.get("length", 0))
        classes = {
            "lower": (inputs.get("lower", True), string.ascii_lowercase, int(inputs.get("minLower", 0))),
            "upper": (inputs.get("upper", True), string.ascii_uppercase, int(inputs.get("minUpper", 0))),
            "numeric": (
                inputs.get("numeric", inputs.get("number", True)),
                string.digits,
                int(inputs.get("minNumeric", 0)),
            ),
            "special": (
                inputs.get("special", True),
                inputs.get("overrideSpecial") or DEFAULT_SPECIAL,
                int(inputs.get("minSpecial", 0)),
            ),
        }
        chosen = [(chars, minimum) for on, chars, minimum in classes.values() if on]
        if length < 1 or not chosen or sum(m for _, m in chosen) > length:
            raise ProviderError("random: length must be at least 1 and cover every min_* asked for")
        picked = [secrets.choice(chars) for chars, minimum in chosen for _ in range(minimum)]
        alphabet = "".join(chars for chars, _ in chosen)
        picked += [secrets.choice(alphabet) for _ in range(length - len(picked))]
        secrets.SystemRandom().shuffle(picked)
        result = "".join(picked)
        return Created(id="none", outputs={"result": result, "bcryptHash": ""})


class RandomBytes(_StateOnly):
    replace_on = REPLACE_ON["RandomBytes"]
    computed = ("base64", "hex")

    def create(self, inputs: dict[str, Any]) -> Created:
        length = int(inputs.get("length", 0))
        if length < 1:
            raise ProviderError("random: length must be at least 1")
        raw = secrets.token_bytes(length)
        return Created(id="none", outputs={"base64": base64.b64encode(raw).decode(), "hex": raw.hex()})


def random_tables(config: Mapping[str, Any]) -> Tables:
    return Tables(
        {
            "random:index/randomPassword:RandomPassword": RandomPassword(),
            "random:index/randomBytes:RandomBytes": RandomBytes(),
        }
    )

"""Reading fields of a JSON body with the API's refusal for a wrong one: a missing or mistyped field
is a 400 with the service's validation code, raised before anything is changed."""

from __future__ import annotations

from typing import Any

from local_services.cloudflare_api.errors import ApiError

_MISSING = object()


class Fields:
    def __init__(self, body: dict[str, Any], code: int, what: str) -> None:
        self.body = body
        self.code = code
        self.what = what

    def refuse(self, message: str) -> ApiError:
        return ApiError(400, self.code, f"{self.what}: {message}")

    def _get(self, key: str, required: bool) -> Any:
        value = self.body.get(key, _MISSING)
        if value is _MISSING or value is None:
            if required:
                raise self.refuse(f"{key} is required")
            return None
        return value

    def text(self, key: str, *, required: bool = False, empty: bool = False) -> str | None:
        value = self._get(key, required)
        if value is None:
            return None
        if not isinstance(value, str) or (not empty and not value.strip()):
            raise self.refuse(f"{key} must be a non-empty string")
        return value

    def need_text(self, key: str) -> str:
        value = self.text(key, required=True)
        assert value is not None
        return value

    def flag(self, key: str) -> bool | None:
        value = self._get(key, False)
        if value is not None and not isinstance(value, bool):
            raise self.refuse(f"{key} must be true or false")
        return value

    def number(self, key: str, *, required: bool = False) -> int | None:
        value = self._get(key, required)
        if value is None:
            return None
        if isinstance(value, bool) or not isinstance(value, int | float) or int(value) != value:
            raise self.refuse(f"{key} must be an integer")
        return int(value)

    def texts(self, key: str) -> list[str] | None:
        value = self._get(key, False)
        if value is None:
            return None
        if not isinstance(value, list) or not all(isinstance(item, str) for item in value):
            raise self.refuse(f"{key} must be a list of strings")
        return value

    def objects(self, key: str, *, required: bool = False) -> list[dict[str, Any]] | None:
        value = self._get(key, required)
        if value is None:
            return None
        if not isinstance(value, list) or not all(isinstance(item, dict) for item in value):
            raise self.refuse(f"{key} must be a list of objects")
        return value

    def entries(self, key: str) -> list[str | dict[str, Any]]:
        """A list whose items are ids or objects (e.g. an application's `policies`)."""
        value = self._get(key, False)
        if value is None:
            return []
        if not isinstance(value, list) or not all(isinstance(item, str | dict) for item in value):
            raise self.refuse(f"{key} must be a list of ids or objects")
        return value

    def mapping(self, key: str, *, required: bool = False) -> dict[str, Any] | None:
        value = self._get(key, required)
        if value is None:
            return None
        if not isinstance(value, dict):
            raise self.refuse(f"{key} must be an object")
        return value

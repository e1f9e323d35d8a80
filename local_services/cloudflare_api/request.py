"""A request as the handlers see it: path parameters, query, and a body read as JSON or as
multipart form data; and the answer they give back (a result, list paging, or raw bytes)."""

from __future__ import annotations

import email.parser
import email.policy
import json
import math
from dataclasses import dataclass, field
from typing import Any

from local_services.cloudflare_api.errors import ApiError, malformed_json


@dataclass(frozen=True)
class Part:
    name: str
    filename: str | None
    content_type: str
    data: bytes


@dataclass
class Request:
    method: str
    path: str
    params: dict[str, str]
    query: dict[str, list[str]]
    content_type: str
    body: bytes

    def json(self) -> Any:
        try:
            return json.loads(self.body)
        except ValueError:
            raise malformed_json() from None

    def json_object(self, code: int) -> dict[str, Any]:
        value = self.json()
        if not isinstance(value, dict):
            raise ApiError(400, code, "the request body must be a JSON object")
        return value

    def json_list(self, code: int) -> list[Any]:
        value = self.json()
        if not isinstance(value, list):
            raise ApiError(400, code, "the request body must be a JSON array")
        return value

    def is_multipart(self) -> bool:
        return self.content_type.lower().startswith("multipart/form-data")

    def parts(self, code: int) -> list[Part]:
        """The parts of a multipart/form-data body; anything else is refused with `code`."""
        if not self.is_multipart() or "boundary=" not in self.content_type:
            raise ApiError(400, code, "expected a multipart/form-data body with a boundary")
        message = email.parser.BytesParser(policy=email.policy.HTTP).parsebytes(
            f"content-type: {self.content_type}\r\n\r\n".encode() + self.body
        )
        if not message.is_multipart() or message.defects:
            raise ApiError(400, code, "the multipart body could not be parsed")
        parts = []
        for item in message.iter_parts():
            name = item.get_param("name", header="content-disposition")
            if not isinstance(name, str):
                raise ApiError(400, code, "a multipart part has no name")
            filename = item.get_filename()
            payload = item.get_payload(decode=True)
            parts.append(
                Part(name, filename, item.get_content_type(), payload if isinstance(payload, bytes) else b"")
            )
        return parts

    def query_value(self, name: str) -> str | None:
        values = self.query.get(name)
        return values[-1] if values else None

    def query_int(self, name: str, default: int, code: int, low: int = 1, high: int = 10_000) -> int:
        raw = self.query_value(name)
        if raw is None:
            return default
        try:
            value = int(raw)
        except ValueError:
            raise ApiError(400, code, f"{name} must be an integer") from None
        if not low <= value <= high:
            raise ApiError(400, code, f"{name} must be between {low} and {high}")
        return value


@dataclass
class Answer:
    result: Any = None
    status: int = 200
    result_info: dict[str, Any] | None = None
    raw: bytes | None = None
    raw_type: str = "application/octet-stream"
    headers: dict[str, str] = field(default_factory=dict)


def paged(
    items: list[Any], request: Request, code: int, per_page_default: int = 20, high: int = 1000
) -> Answer:
    """Page-number paging as the v4 API does it: `page`, `per_page`, and `result_info` with the counts.
    A page past the end is empty, which is how the client library knows to stop."""
    page = request.query_int("page", 1, code, high=1_000_000)
    per_page = request.query_int("per_page", per_page_default, code, high=high)
    chunk = items[(page - 1) * per_page : page * per_page]
    return Answer(
        chunk,
        result_info={
            "page": page,
            "per_page": per_page,
            "count": len(chunk),
            "total_count": len(items),
            "total_pages": max(1, math.ceil(len(items) / per_page)),
        },
    )


def whole(items: list[Any]) -> Answer:
    """A list the API answers in one piece (the client reads it as a single page)."""
    return Answer(
        items, result_info={"page": 1, "per_page": len(items), "count": len(items), "total_count": len(items)}
    )

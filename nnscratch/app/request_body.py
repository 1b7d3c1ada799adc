"""Reading a request's body for the web app: bounded in size and in time, and the image
inside a multipart form or a JSON data URL.

Bad input raises `RequestError`, which the app answers as `{"error": message}` with its
HTTP status (4xx).
"""

from __future__ import annotations

import asyncio
import base64
import binascii

from starlette.datastructures import UploadFile
from starlette.formparsers import MultiPartException, MultiPartParser
from starlette.requests import Request

FORM_TYPES = ("multipart/form-data", "application/json")


class RequestError(Exception):
    """A client error (or 503): becomes `{"error": message}` with this HTTP status
    and these `headers`."""

    def __init__(self, status: int, message: str, headers: dict | None = None):
        super().__init__(message)
        self.status, self.headers = status, headers


def media_type(request: Request) -> str:
    """The Content-Type without its parameters, lower case: "" if there is none."""
    return request.headers.get("content-type", "").split(";")[0].strip().lower()


async def read_body(request: Request, max_bytes: int, timeout: float) -> bytes:
    """The whole body: 413 past `max_bytes`, 408 past `timeout` seconds."""
    check_content_length(request.headers.get("content-length"), max_bytes)
    try:
        return await asyncio.wait_for(receive_bounded(request, max_bytes), timeout)
    except asyncio.TimeoutError:  # TimeoutError itself from Python 3.11
        raise RequestError(
            408, f"the body was not received within {timeout:g} s"
        ) from None


def check_content_length(length: str | None, max_bytes: int) -> None:
    """Refuse a malformed (400) or too large (413) declared length, if any."""
    if length is None:
        return
    if not length.isdigit():
        raise RequestError(400, f"bad Content-Length header {length!r}")
    if int(length) > max_bytes:
        raise RequestError(
            413, f"body of {length} bytes is over the limit of {max_bytes}"
        )


async def receive_bounded(request: Request, max_bytes: int) -> bytes:
    """The body as it streams, refused (413) as soon as it passes `max_bytes`."""
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > max_bytes:  # a missing or lying Content-Length
            raise RequestError(413, f"body is over the limit of {max_bytes} bytes")
        chunks.append(chunk)
    return b"".join(chunks)


def decode_data_url(value) -> bytes:
    """'data:image/png;base64,....' -> the image bytes."""
    if not isinstance(value, str) or not value.startswith("data:image/"):
        raise RequestError(
            422, "image: expected a data URL 'data:image/png;base64,...'"
        )
    header, _, payload = value.partition(",")
    if not header.endswith(";base64") or not payload:
        raise RequestError(
            422, "image: expected a base64 data URL 'data:image/...;base64,...'"
        )
    try:
        return base64.b64decode(payload, validate=True)
    except (binascii.Error, ValueError):
        raise RequestError(422, "image: the data URL is not valid base64") from None


async def multipart_file(headers, body: bytes) -> bytes:
    """The bytes of the image in field 'file' of a multipart body (already read)."""

    async def replay():
        yield body

    parser = MultiPartParser(headers, replay(), max_files=1, max_fields=10)
    try:
        form = await parser.parse()
    except MultiPartException as e:
        raise RequestError(400, f"bad multipart body: {e}") from None
    try:
        upload = form.get("file")
        if not isinstance(upload, UploadFile):
            raise RequestError(422, "multipart: expected an image file in field 'file'")
        return await upload.read()
    finally:
        await form.close()

"""The error shape for requests that never reach the application.

aiohttp answers some requests itself, before any route or middleware runs: a request
line it cannot parse, a header past its size limit, a chunked body whose framing is
broken, a bad `Content-Length`. Its own answer is plain text; here it is the same JSON
error body as every other non-2xx response, so that a client needs one parser for all
of them. The connection is still closed afterwards, as aiohttp does, since the byte
stream cannot be trusted after a framing error.

aiohttp offers no public hook for these answers, so the runner builds its connection
handlers from a subclass of its `RequestHandler`. The test of this module talks raw
bytes to a real listening socket, so an aiohttp release that changes these internals
fails it rather than quietly bringing the plain text back.
"""

from __future__ import annotations

import logging
from http import HTTPStatus
from typing import Any

from aiohttp import web
from aiohttp.web_protocol import RequestHandler
from aiohttp.web_request import BaseRequest

from app.errors import AppError, PayloadTooLarge, ValidationFailed

log = logging.getLogger("dupes.http")

# How much of aiohttp's description of a malformed request goes into the answer.
_REASON_MAX = 200


def protocol_error(status: int, reason: str | None) -> AppError:
    """The application error for a request aiohttp refused before routing it."""
    detail = (reason or "").strip().splitlines()[0:1]
    text = detail[0][:_REASON_MAX] if detail else HTTPStatus(status).phrase
    if status == HTTPStatus.REQUEST_ENTITY_TOO_LARGE:
        return PayloadTooLarge(f"request is too large: {text}")
    if 400 <= status < 500:
        error = ValidationFailed(f"malformed HTTP request: {text}")
        error.status = status
        return error
    failure = AppError("internal error")
    if status == HTTPStatus.GATEWAY_TIMEOUT:
        failure.status, failure.code = status, "UNAVAILABLE"
        failure.message = "the request took too long"
    return failure


class _JsonErrorHandler(RequestHandler):
    __slots__ = ()

    def handle_error(
        self,
        request: BaseRequest,
        status: int = 500,
        exc: BaseException | None = None,
        message: str | None = None,
    ) -> web.StreamResponse:
        if request.writer.output_size > 0:
            # Part of a response is out already; all that is left is to drop the line.
            raise ConnectionError("a response was already being sent")
        if status >= 500:
            log.error("request failed outside the application", exc_info=exc)
        else:
            log.info(
                "malformed request refused",
                extra={"status": status, "remote": request.remote},
            )
        error = protocol_error(status, message)
        response = web.json_response(error.to_body(), status=error.status)
        response.force_close()
        return response

    def log_exception(self, *args: Any, **kwargs: Any) -> None:
        # After a response, aiohttp reads what is left of the request body so that the
        # connection can be reused; a body that cannot be decoded (broken gzip) or a
        # client that hangs up fails there. The request was answered already (400, or
        # the route's own error), so this is no server fault to log as one.
        exc = kwargs.get("exc_info")
        if isinstance(exc, web.RequestPayloadError | ConnectionError):
            log.info("unread request body dropped: %s", " ".join(str(exc).split()))
            return
        super().log_exception(*args, **kwargs)


class _JsonErrorServer(web.Server):
    def __call__(self) -> RequestHandler:
        return _JsonErrorHandler(self, loop=self._loop, **self._kwargs)


class AppRunner(web.AppRunner):
    """`aiohttp.web.AppRunner` whose connections answer protocol errors in JSON."""

    async def _make_server(self) -> web.Server:
        server = await super()._make_server()
        # Same object, same state; only the connection handlers it makes differ.
        server.__class__ = _JsonErrorServer
        return server

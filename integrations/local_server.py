"""A WSGI app served on 127.0.0.1 in a background thread: the base of our fake HubSpot and Slack.

Tests talk to the fakes through the real SDKs over real sockets, so the lifecycle (bind to a free
port, serve, shut down, join) lives here once.
"""

from __future__ import annotations

import threading
from typing import Any, Self

from werkzeug.serving import BaseWSGIServer, WSGIRequestHandler, make_server


class QuietHandler(WSGIRequestHandler):
    """No per-request log lines from the fakes."""

    def log_request(self, *args: Any, **kwargs: Any) -> None:
        pass


class LocalServer:
    """Mixin: subclasses provide `_wsgi(environ, start_response)` and a `server_name`."""

    server_name = "fake-server"
    _server: BaseWSGIServer | None = None
    _thread: threading.Thread | None = None

    def _wsgi(self, environ: Any, start_response: Any) -> Any:  # pragma: no cover - abstract
        raise NotImplementedError

    def start(self) -> Self:
        if self._server is None:
            self._server = make_server(
                "127.0.0.1", 0, self._wsgi, threaded=True, request_handler=QuietHandler
            )
            self._thread = threading.Thread(
                target=self._server.serve_forever,
                args=(0.05,),
                name=self.server_name,
                daemon=True,
            )
            self._thread.start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            if self._thread is not None:
                self._thread.join(timeout=5)
            self._server = self._thread = None

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def port(self) -> int:
        if self._server is None:
            raise RuntimeError(f"{type(self).__name__} is not started")
        return int(self._server.server_port)

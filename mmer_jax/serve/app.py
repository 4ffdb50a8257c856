"""``mmer serve``: a Starlette app over a :class:`~mmer_jax.serve.predictor.Predictor`.

Routes: ``GET /`` (the page), ``GET /health``, ``GET /model``, ``POST /predict`` (multipart:
``file``, optional ``text``, ``window``, ``hop``) and the WebSocket ``/stream`` (each binary
message one self-contained media chunk, e.g. a 2-s WebM segment from MediaRecorder; a text message
``{"text": ..., "ext": ".webm"}`` sets the transcript and the chunks' type).

Safety: bodies over ``max_upload_bytes`` get 413 before they are read whole (a ``Content-Length``
over the limit is refused before any byte is read; a chunked body is cut off when it passes the
limit); a body that has not arrived within ``body_timeout_s`` gets 408 (a client sending one byte
every few seconds holds its connection that long, no more); one client address may have
``max_per_client`` requests in flight (429 past it) and all clients together ``max_inflight``
(503); an upload takes a prediction slot only once it has arrived whole, so slow uploads never
hold the slots; an input longer than ``max_duration_s`` gets 413, from its header before decoding
where the file says its length; a bad window/hop or more than ``max_windows`` windows 400; an
unknown type 415, an undecodable or unusable file 400 with the reason; the client's file name is
only ever shown, never used in a path (uploads are written as ``input<ext>`` in a fresh temporary
directory that is removed whatever happens); at most ``max_concurrency`` predictions run at once
and ``max_queue`` more wait, past that 503. Nothing on this path unpickles.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import re
import shutil
import socket
import tempfile

from mmer_jax.serve import inputs
from mmer_jax.serve.page import PAGE


class _Limiter:
    """At most ``workers`` predictions at once, ``queue`` more waiting; past that, busy."""

    def __init__(self, workers: int, queue: int):
        self.workers, self.capacity = workers, workers + queue
        self.pending = 0
        self._sem: asyncio.Semaphore | None = None

    def admit(self) -> bool:
        if self.pending >= self.capacity:
            return False
        self.pending += 1
        return True

    def release(self) -> None:
        self.pending -= 1

    @contextlib.asynccontextmanager
    async def run(self):
        if self._sem is None:  # created inside the server's event loop
            self._sem = asyncio.Semaphore(self.workers)
        async with self._sem:
            yield


# Leading bytes of the containers a chunk can be: a WebSocket chunk says what it is.
_MAGIC = ((b"RIFF", 8, b"WAVE", ".wav"), (b"RIFF", 8, b"AVI ", ".avi"), (b"fLaC", 0, b"", ".flac"),
          (b"OggS", 0, b"", ".ogg"), (b"\x1aE\xdf\xa3", 0, b"", ".webm"),
          (b"ID3", 0, b"", ".mp3"), (b"", 4, b"ftyp", ".mp4"))


def sniff_ext(data: bytes) -> str | None:
    """The extension of a media chunk from its first bytes (WAV, AVI, FLAC, Ogg, WebM/Matroska,
    MP3 with an ID3 tag, MP4/MOV), or None when they say nothing known."""
    for head, at, tag, ext in _MAGIC:
        if data.startswith(head) and data[at : at + len(tag)] == tag:
            return ext
    return None


def _safe_name(name: str | None) -> str:
    """A client file name reduced to something printable, for messages only."""
    base = re.split(r"[\\/]", name or "")[-1]
    return re.sub(r"[^A-Za-z0-9._ -]", "_", base)[:100] or "upload"


class _BodyLimit:
    """ASGI middleware: 413 for a declared or streamed HTTP body over ``limit`` bytes, 408 for a
    body not arrived within ``timeout`` seconds, 429 past ``per_client`` requests in flight from
    one address, 503 past ``inflight`` from all."""

    def __init__(self, app, limit: int, timeout: float = 30.0, per_client: int = 4,
                 inflight: int = 64):
        self.app, self.limit, self.timeout = app, limit, timeout
        self.per_client, self.inflight = per_client, inflight
        self.clients: dict[str, int] = {}

    async def __call__(self, scope, receive, send):
        if scope["type"] not in ("http", "websocket"):
            return await self.app(scope, receive, send)
        from starlette.responses import JSONResponse

        client = (scope.get("client") or ("?", 0))[0]
        refuse = None
        if self.clients.get(client, 0) >= self.per_client:
            refuse = (429, f"too many requests in flight from {client} (limit "
                           f"{self.per_client}); retry when one has finished")
        elif sum(self.clients.values()) >= self.inflight:
            refuse = (503, f"busy: {self.inflight} requests in flight; retry later")
        if refuse is not None:
            if scope["type"] == "websocket":
                await send({"type": "websocket.close", "code": 1013, "reason": refuse[1][:120]})
                return None
            resp = JSONResponse({"error": refuse[1]}, status_code=refuse[0],
                                headers={"Retry-After": "1", "Connection": "close"})
            return await resp(scope, receive, send)
        self.clients[client] = self.clients.get(client, 0) + 1
        try:
            if scope["type"] == "websocket":  # its messages are bounded by uvicorn's ws_max_size
                return await self.app(scope, receive, send)
            return await self._http(scope, receive, send)
        finally:
            self.clients[client] -= 1
            if not self.clients[client]:
                del self.clients[client]

    async def _http(self, scope, receive, send):
        from starlette.exceptions import HTTPException
        from starlette.responses import JSONResponse

        declared = dict(scope.get("headers") or []).get(b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > self.limit:
            # Refused before a byte of the body is read.
            resp = JSONResponse({"error": self._msg()}, status_code=413,
                                headers={"Connection": "close"})
            return await resp(scope, receive, send)
        seen, done = 0, False
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.timeout

        async def limited():
            nonlocal seen, done
            if done:  # after the body: no deadline (e.g. waiting for a disconnect)
                return await receive()
            try:
                msg = await asyncio.wait_for(receive(), max(deadline - loop.time(), 0.0))
            except TimeoutError:
                raise HTTPException(408, f"the upload did not arrive within "
                                         f"{self.timeout:g} s") from None
            if msg["type"] == "http.request":
                seen += len(msg.get("body", b""))
                if seen > self.limit:
                    raise HTTPException(413, self._msg())
                done = not msg.get("more_body", False)
            return msg

        return await self.app(scope, limited, send)

    def _msg(self) -> str:
        return f"upload larger than the limit of {self.limit // (1 << 20)} MiB"


def create_app(predictor, *, max_upload_bytes: int = 32 << 20, max_concurrency: int = 2,
               max_queue: int = 8, max_duration_s: float = 600.0, max_windows: int = 512,
               body_timeout_s: float = 30.0, max_per_client: int = 4,
               max_inflight: int | None = None):
    """The ASGI app serving ``predictor``.

    Args:
      predictor: a loaded (and, for a server, warmed-up) Predictor.
      max_upload_bytes: the largest request body or WebSocket message accepted.
      max_concurrency: predictions running at once (worker threads).
      max_queue: requests waiting for a worker; more than that are answered 503.
      max_duration_s: the longest input in seconds (413).
      max_windows: most windows one input is scored in (400).
      body_timeout_s: seconds a request body may take to arrive (408).
      max_per_client: requests (and WebSockets) one client address may have open (429).
      max_inflight: requests open from all clients (503); default 8 x (concurrency + queue).

    Returns:
      A Starlette application.
    """
    from starlette.applications import Starlette
    from starlette.concurrency import run_in_threadpool
    from starlette.datastructures import UploadFile
    from starlette.exceptions import HTTPException
    from starlette.middleware import Middleware
    from starlette.requests import Request
    from starlette.responses import HTMLResponse, JSONResponse
    from starlette.routing import Route, WebSocketRoute
    from starlette.websockets import WebSocket, WebSocketDisconnect

    limiter = _Limiter(max_concurrency, max_queue)
    limits = inputs.Limits(max_duration_s=max_duration_s, max_windows=max_windows)
    info = predictor.describe()

    def predict_path(path, text, window, hop, shown):
        decoded = predictor.decode(path, text, shown_name=shown, window_s=window, hop_s=hop,
                                   limits=limits)
        return predictor.predict_decoded(decoded, name=shown)

    def predict_bytes(data: bytes, ext: str, text, shown):
        with tempfile.TemporaryDirectory(prefix="mmer-upload-") as tmp:
            path = os.path.join(tmp, "input" + ext)
            with open(path, "wb") as f:
                f.write(data)
            return predict_path(path, text, None, None, shown)

    async def page(request: Request):
        return HTMLResponse(PAGE)

    async def health(request: Request):
        return JSONResponse({"status": "ok", "variant": predictor.variant,
                             "compiled_shapes": len(predictor.warm_shapes)})

    async def model(request: Request):
        return JSONResponse(info)

    def _float(form, key):
        raw = form.get(key)
        if raw in (None, ""):
            return None
        try:
            value = float(raw)
        except (TypeError, ValueError):
            raise inputs.InputError(
                f"field {key!r} must be a number of seconds, got {raw!r}") from None
        return value

    async def predict(request: Request):
        ctype = request.headers.get("content-type", "")
        if not ctype.startswith("multipart/form-data"):
            return JSONResponse({"error": "expected a multipart/form-data upload with a 'file' "
                                          f"field, got content type {ctype or 'none'!r}"},
                                status_code=415)
        admitted = False
        try:
            # The body first (bounded in size and time by _BodyLimit): a slow upload holds its
            # connection, never a prediction slot.
            form = await request.form(max_files=1, max_fields=8)
            try:
                upload = form.get("file")
                if not isinstance(upload, UploadFile):
                    raise inputs.InputError("multipart field 'file' (the media file) is missing")
                shown = _safe_name(upload.filename)
                inputs.kind_of(shown)  # 415 before anything is written
                ext = os.path.splitext(shown.lower())[1]
                text = form.get("text") if isinstance(form.get("text"), str) else None
                window, hop = _float(form, "window"), _float(form, "hop")
                if hop is not None and window is None:
                    raise inputs.InputError("field 'hop' needs 'window'")
                inputs.check_window(window, hop)  # 400 before anything is decoded
                if not limiter.admit():
                    return JSONResponse({"error": f"busy: {limiter.pending} requests running "
                                                  "or queued; retry later"}, status_code=503,
                                        headers={"Retry-After": "1"})
                admitted = True
                tmp = tempfile.mkdtemp(prefix="mmer-upload-")
                try:
                    path = os.path.join(tmp, "input" + ext)  # never the client's name
                    with open(path, "wb") as f:
                        await run_in_threadpool(shutil.copyfileobj, upload.file, f)
                    if os.path.getsize(path) == 0:
                        raise inputs.InputError(f"{shown}: empty upload")
                    async with limiter.run():
                        result = await run_in_threadpool(predict_path, path, text, window, hop,
                                                         shown)
                finally:
                    shutil.rmtree(tmp, ignore_errors=True)
            finally:
                await form.close()
        except inputs.InputError as exc:
            return JSONResponse({"error": str(exc)}, status_code=exc.status)
        finally:
            if admitted:
                limiter.release()
        return JSONResponse(result)

    async def stream(ws: WebSocket):
        await ws.accept()
        text, ext, index = None, ".webm", 0
        try:
            while True:
                msg = await ws.receive()
                if msg["type"] == "websocket.disconnect":
                    break
                if msg.get("text") is not None:
                    try:
                        conf = json.loads(msg["text"])
                        text = conf.get("text", text)
                        if conf.get("ext"):
                            inputs.kind_of("x" + str(conf["ext"]))
                            ext = str(conf["ext"]).lower()
                        await ws.send_json({"ok": True, "ext": ext})
                    except (ValueError, AttributeError, inputs.InputError) as exc:
                        await ws.send_json({"error": f"bad settings message: {exc}"})
                    continue
                data = msg.get("bytes") or b""
                sniffed = sniff_ext(data)  # a chunk says what it is; the setting is a fallback
                if len(data) > max_upload_bytes:
                    await ws.send_json({"error": "chunk larger than the upload limit"})
                    continue
                if not data:
                    await ws.send_json({"error": "empty chunk"})
                    continue
                if not limiter.admit():
                    await ws.send_json({"error": "busy", "index": index})
                    index += 1
                    continue
                try:
                    async with limiter.run():
                        res = await run_in_threadpool(predict_bytes, data, sniffed or ext,
                                                      text, f"chunk{index}{sniffed or ext}")
                    res["index"] = index
                    await ws.send_json(res)
                except inputs.InputError as exc:
                    await ws.send_json({"error": str(exc), "index": index})
                finally:
                    limiter.release()
                index += 1
        except WebSocketDisconnect:
            pass

    async def http_error(request, exc: HTTPException):
        return JSONResponse({"error": exc.detail}, status_code=exc.status_code)

    app = Starlette(
        routes=[
            Route("/", page),
            Route("/health", health),
            Route("/model", model),
            Route("/predict", predict, methods=["POST"]),
            WebSocketRoute("/stream", stream),
        ],
        middleware=[Middleware(_BodyLimit, limit=max_upload_bytes, timeout=body_timeout_s,
                               per_client=max_per_client,
                               inflight=max_inflight or 8 * (max_concurrency + max_queue))],
        exception_handlers={HTTPException: http_error},
    )
    app.state.limiter = limiter
    return app


def bind(host: str, port: int) -> socket.socket:
    """A listening TCP socket on ``host:port``, made before anything slow so a busy port fails
    at once.

    Raises:
      UsageError: the address cannot be bound (in use, not permitted, unknown host).
    """
    from mmer_jax.errors import UsageError

    try:
        info = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)[0]
        sock = socket.socket(info[0], socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(info[4])
        sock.listen(128)
    except OSError as exc:
        raise UsageError(f"cannot listen on {host}:{port}: {exc.strerror or exc} "
                         "(another server on that port? choose one with --port)") from exc
    return sock


def serve(predictor, host: str = "127.0.0.1", port: int = 8000,
          sock: socket.socket | None = None, **limits) -> None:
    """Runs the app under uvicorn until interrupted (the predictor should be warmed up), on
    ``sock`` when given (see :func:`bind`), else on ``host:port``."""
    import uvicorn

    app = create_app(predictor, **limits)
    config = uvicorn.Config(app, host=host, port=port,
                            ws_max_size=limits.get("max_upload_bytes", 32 << 20),
                            log_level="info")
    server = uvicorn.Server(config)
    server.run(sockets=[sock] if sock is not None else None)

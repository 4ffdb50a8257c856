"""``mmer serve``: a Starlette app over a :class:`~mmer_jax.serve.predictor.Predictor`.

Routes: ``GET /`` (the page), ``GET /health``, ``GET /model``, ``POST /predict`` (multipart:
``file``, optional ``text``, ``window``, ``hop``) and the WebSocket ``/stream`` (each binary
message one self-contained media chunk, e.g. a 2-s WebM segment from MediaRecorder; a text message
``{"text": ..., "ext": ".webm"}`` sets the transcript and the chunks' type).

Safety: bodies over ``max_upload_bytes`` get 413 before they are read whole (a ``Content-Length``
over the limit is refused before any byte is read; a chunked body is cut off when it passes the
limit); an unknown type 415, an undecodable or unusable file 400 with the reason; the client's file
name is only ever shown, never used in a path (uploads are written as ``input<ext>`` in a fresh
temporary directory that is removed whatever happens); at most ``max_concurrency`` predictions run
at once and ``max_queue`` more wait, past that 503. Nothing on this path unpickles.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import re
import shutil
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


def _safe_name(name: str | None) -> str:
    """A client file name reduced to something printable, for messages only."""
    base = re.split(r"[\\/]", name or "")[-1]
    return re.sub(r"[^A-Za-z0-9._ -]", "_", base)[:100] or "upload"


class _BodyLimit:
    """ASGI middleware: 413 for a declared or streamed HTTP body over ``limit`` bytes."""

    def __init__(self, app, limit: int):
        self.app, self.limit = app, limit

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        from starlette.exceptions import HTTPException
        from starlette.responses import JSONResponse

        declared = dict(scope.get("headers") or []).get(b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > self.limit:
            # Refused before a byte of the body is read.
            resp = JSONResponse({"error": self._msg()}, status_code=413,
                                headers={"Connection": "close"})
            return await resp(scope, receive, send)
        seen = 0

        async def limited():
            nonlocal seen
            msg = await receive()
            if msg["type"] == "http.request":
                seen += len(msg.get("body", b""))
                if seen > self.limit:
                    raise HTTPException(413, self._msg())
            return msg

        return await self.app(scope, limited, send)

    def _msg(self) -> str:
        return f"upload larger than the limit of {self.limit // (1 << 20)} MiB"


def create_app(predictor, *, max_upload_bytes: int = 32 << 20, max_concurrency: int = 2,
               max_queue: int = 8):
    """The ASGI app serving ``predictor``.

    Args:
      predictor: a loaded (and, for a server, warmed-up) Predictor.
      max_upload_bytes: the largest request body or WebSocket message accepted.
      max_concurrency: predictions running at once (worker threads).
      max_queue: requests waiting for a worker; more than that are answered 503.

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
    info = predictor.describe()

    def predict_path(path, text, window, hop, shown):
        decoded = predictor.decode(path, text, shown_name=shown)
        return predictor.predict_decoded(decoded, window, hop, name=shown)

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
        if not value > 0:
            raise inputs.InputError(f"field {key!r} must be > 0, got {raw!r}")
        return value

    async def predict(request: Request):
        ctype = request.headers.get("content-type", "")
        if not ctype.startswith("multipart/form-data"):
            return JSONResponse({"error": "expected a multipart/form-data upload with a 'file' "
                                          f"field, got content type {ctype or 'none'!r}"},
                                status_code=415)
        if not limiter.admit():
            return JSONResponse({"error": f"busy: {limiter.pending} requests running or queued;"
                                          " retry later"}, status_code=503,
                                headers={"Retry-After": "1"})
        try:
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
                        res = await run_in_threadpool(predict_bytes, data, ext, text,
                                                      f"chunk{index}{ext}")
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
        middleware=[Middleware(_BodyLimit, limit=max_upload_bytes)],
        exception_handlers={HTTPException: http_error},
    )
    app.state.limiter = limiter
    return app


def serve(predictor, host: str = "127.0.0.1", port: int = 8000, **limits) -> None:
    """Runs the app under uvicorn until interrupted (the predictor should be warmed up)."""
    import uvicorn

    app = create_app(predictor, **limits)
    uvicorn.run(app, host=host, port=port,
                ws_max_size=limits.get("max_upload_bytes", 32 << 20), log_level="info")

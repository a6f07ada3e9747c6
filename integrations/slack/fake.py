"""A local fake Slack Web API server for tests: the real `slack_sdk.WebClient` talks to it.

Usage::

    with FakeSlack(token="xoxb-test") as fake:
        fake.add_user("U1", "rep@example.com")
        client = WebClient(token="xoxb-test", base_url=fake.base_url)

Speaks Slack's JSON shapes (HTTP 200 + `ok: false` + `error` for API errors) for auth.test,
users.lookupByEmail, users.info, conversations.open/history/replies,
chat.postMessage/update/postEphemeral and views.open/update; `slash_command` builds the signed
request Slack sends to a slash command's URL. It accepts JSON or form bodies (slack_sdk sends
both), requires `Authorization: Bearer <token>` (else `invalid_auth`), refuses `U…` ids as
chat channels (`channel_not_found`: DM through conversations.open), and records every call.

File uploads are files_upload_v2's three steps as Slack has them: files.getUploadURLExternal
(filename and length) hands out an upload URL on this server, the client POSTs the raw bytes
there (no token; a URL is good for one upload), and files.completeUploadExternal shares the
files in a channel (by id) or thread, as a message carrying them; `uploaded()` returns them.

Pacing: `limit_channel_rate()` makes chat.postMessage answer 429 + Retry-After, as Slack does,
when a conversation gets messages faster than about one per second (a short burst allowed).

Faults (each consumes one matching call): `fail_next` (429 + Retry-After, 5xx, or an API error),
`failure_rate` (random 429/5xx), `delay_next` (process, then hold the answer: a client timeout
after the message was posted), `hang_rate` (the same at random: a share of calls hang).
`apply=True` on 5xx posts the message *before* failing - the ambiguous case a deliverer must not
double-post on.
"""

from __future__ import annotations

import json
import math
import random
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from werkzeug.wrappers import Request, Response

from integrations.local_server import LocalServer
from integrations.slack._fake_state import Conversation, Fault, Workspace, consume, decode_args, err


@dataclass
class Call:
    method: str  # e.g. "chat.postMessage"
    args: dict[str, Any]
    status: int = 200
    error: str | None = None  # Slack error code when ok is false
    applied: bool = True  # did the call change the workspace
    held: float = 0.0  # seconds the answer was held back (delay_next, hang_rate)
    at: float = 0.0  # when the call arrived (the fake's clock), e.g. for deadline-to-post lag


class FakeSlack(LocalServer):
    server_name = "fake-slack"

    def __init__(self, token: str = "xoxb-test", now: Callable[[], float] | None = None) -> None:
        self.token = token
        self._now = now or time.time
        self._lock = threading.Lock()
        self._open = threading.Event()
        self._open.set()
        self.reset()

    # --- lifecycle ----------

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/"

    def reset(self, now: Callable[[], float] | None = None) -> None:
        """Forget users, messages, calls and faults; keep the server running."""
        with self._lock:
            if now is not None:
                self._now = now
            self._open.set()
            self.ws = Workspace(lambda: self._now())
            self.calls: list[Call] = []
            self.errors: list[str] = []  # exceptions inside the fake (bugs)
            self._faults: list[Fault] = []
            self._delays: list[Fault] = []
            self._random: tuple[float, tuple[int, ...], random.Random, float] | None = None
            self._hangs: tuple[float, float, random.Random] | None = None
            self._pace: tuple[float, int] | None = None
            self._buckets: dict[str, tuple[float, float]] = {}  # conversation -> (tokens, at)

    # --- test-facing data ----------

    def add_user(self, user_id: str, email: str, name: str | None = None, tz: str = "UTC") -> None:
        with self._lock:
            self.ws.users[user_id] = {
                "id": user_id,
                "name": name or email.split("@")[0],
                "tz": tz,
                "profile": {"email": email, "real_name": name or email},
            }

    def add_channel(self, channel_id: str, name: str) -> None:
        with self._lock:
            self.ws.conversations[channel_id] = Conversation(channel_id, name=name)

    def user(self, user_id: str) -> dict[str, Any] | None:
        with self._lock:
            found = self.ws.users.get(user_id)
            return dict(found) if found else None

    def conversation_list(self) -> list[dict[str, Any]]:
        """Every conversation as {id, name, user} (`user`: the other member of a DM)."""
        with self._lock:
            return [
                {"id": c.id, "name": c.name, "user": c.user} for c in self.ws.conversations.values()
            ]

    def dm_of(self, user_id: str) -> str | None:
        with self._lock:
            return next((c.id for c in self.ws.conversations.values() if c.user == user_id), None)

    def messages(self, channel: str) -> list[dict[str, Any]]:
        """Every message in a conversation (thread replies included), oldest first."""
        with self._lock:
            conv = self.ws.resolve(channel, by_name=True)
            return [dict(m) for m in conv.messages] if conv else []

    def all_messages(self) -> list[dict[str, Any]]:
        with self._lock:
            return [
                {**m, "channel": c.id} for c in self.ws.conversations.values() for m in c.messages
            ]

    @property
    def ephemerals(self) -> list[dict[str, Any]]:
        with self._lock:
            return list(self.ws.ephemerals)

    @property
    def views(self) -> dict[str, dict[str, Any]]:
        with self._lock:
            return dict(self.ws.views)

    def pause(self) -> None:
        """Hold every request until `resume()`: Slack is slow right now."""
        self._open.clear()

    def resume(self) -> None:
        self._open.set()

    def delete_message(self, channel: str, ts: str) -> None:
        """A user deleted a message (a thread's replies go with it)."""
        with self._lock:
            conv = self.ws.conversations[channel]
            conv.messages = [m for m in conv.messages if ts not in (m["ts"], m.get("thread_ts"))]

    def uploaded(self) -> list[dict[str, Any]]:
        """Every completed upload: id, name, title, mimetype, channel and the bytes (`data`)."""
        with self._lock:
            return [dict(f) for f in self.ws.files.values() if f["completed"]]

    def calls_to(self, method: str) -> list[Call]:
        with self._lock:
            return [c for c in self.calls if c.method == method]

    def slash_command(
        self, user_id: str, secret: str, at: float, command: str = "/sla", text: str = ""
    ) -> tuple[bytes, dict[str, str]]:
        """The signed form request Slack sends to a slash command's URL: (body, headers)."""
        from urllib.parse import urlencode

        from slack_sdk.signature import SignatureVerifier

        body = urlencode(
            {
                "token": "deprecated-verification-token",
                "team_id": "T0FAKE0001",
                "channel_id": "C0GENERAL1",
                "user_id": user_id,
                "user_name": (self.user(user_id) or {}).get("name", user_id),
                "command": command,
                "text": text,
                "response_url": "https://hooks.slack.com/commands/T0FAKE0001/1/abc",
                "trigger_id": f"trigger-{command}-{user_id}",
            }
        ).encode()
        ts = str(int(at))
        signature = SignatureVerifier(secret).generate_signature(timestamp=ts, body=body)
        headers = {
            "Content-Type": "application/x-www-form-urlencoded",
            "X-Slack-Request-Timestamp": ts,
            "X-Slack-Signature": signature,
        }
        return body, headers

    def expire_trigger(self, trigger_id: str) -> None:
        with self._lock:
            self.ws.expired_triggers.add(trigger_id)

    # --- fault injection ----------

    def fail_next(
        self,
        n: int = 1,
        status: int = 429,
        *,
        method: str | None = None,
        retry_after: float | None = None,
        error: str | None = None,
        apply: bool = False,
    ) -> None:
        """Fail the next `n` matching calls: 429 (Retry-After default 1), a 5xx, or with
        `status=200, error=...` an API error such as channel_not_found."""
        if status == 429 and retry_after is None:
            retry_after = 1
        with self._lock:
            self._faults.append(Fault(n, method, status, retry_after, error, apply))

    def failure_rate(
        self,
        p: float,
        statuses: Iterable[int] = (429, 500, 503),
        *,
        seed: int | None = None,
        apply_ratio: float = 0.0,
    ) -> None:
        """Fail each call with probability `p`; a 5xx is applied first with `apply_ratio`."""
        with self._lock:
            self._random = (p, tuple(statuses), random.Random(seed), apply_ratio) if p else None

    def hang_rate(self, p: float, seconds: float, *, seed: int | None = None) -> None:
        """Process each call that succeeds, then hold its answer `seconds`, with probability
        `p` (a hung connection: the client times out after the effect); `p=0` stops it."""
        with self._lock:
            self._hangs = (p, seconds, random.Random(seed)) if p else None

    def limit_channel_rate(self, interval: float = 1.0, burst: int = 2) -> None:
        """Enforce Slack's chat.postMessage limit: one message per `interval` per conversation,
        a burst of `burst` allowed (a token bucket); past it, 429 with Retry-After (whole s)."""
        with self._lock:
            self._pace = (interval, burst) if interval > 0 else None

    def _paced(self, args: dict[str, Any]) -> float | None:
        """Seconds the caller must wait before posting to this conversation, or None (accepted).
        The caller holds the lock."""
        if self._pace is None:
            return None
        interval, burst = self._pace
        conv = self.ws.resolve(args.get("channel"), by_name=True)
        if conv is None:
            return None  # channel_not_found is answered by the method
        now = self._now()
        tokens, last = self._buckets.get(conv.id, (float(burst), now))
        tokens = min(float(burst), tokens + (now - last) / interval)
        if tokens < 1:
            self._buckets[conv.id] = (tokens, now)
            return (1 - tokens) * interval
        self._buckets[conv.id] = (tokens - 1, now)
        return None

    def delay_next(self, n: int, seconds: float, *, method: str | None = None) -> None:
        """Process the next `n` matching calls, then hold each answer `seconds`."""
        with self._lock:
            self._delays.append(Fault(n, method, delay=seconds))

    # --- HTTP ----------

    def _wsgi(self, environ: dict[str, Any], start_response: Any) -> Iterable[bytes]:
        request = Request(environ)
        method = request.path.strip("/").split("/")[-1]
        try:
            status, body, headers, delay = self._handle(request, method)
        except Exception as exc:  # a bug in the fake: make it visible to the test
            self.errors.append(f"{method}: {exc!r}")
            status, body, headers, delay = 500, err("fake_bug"), {}, 0.0
        if delay:
            time.sleep(delay)
        if isinstance(body, str):  # the upload URL answers in plain text
            response = Response(body, status=status, content_type="text/plain")
        else:
            response = Response(json.dumps(body), status=status, content_type="application/json")
        for key, value in headers.items():
            response.headers[key] = value
        return response(environ, start_response)

    def _handle(self, request: Request, method: str) -> tuple[int, Any, dict[str, str], float]:
        if request.path.startswith("/upload/"):
            return self._upload(request, method)
        args = decode_args(request)
        auth = request.headers.get("Authorization", "")
        self._open.wait(timeout=30)
        with self._lock:
            self.ws.upload_base = self.base_url  # upload URLs point back at this server
            call = Call(method, args)
            call = Call(method, args, at=self._now())
            self.calls.append(call)
            handler = getattr(self.ws, method.replace(".", "_"), None)
            if handler is None:
                call.error, call.applied = "unknown_method", False
                return 200, err("unknown_method"), {}, 0.0
            if auth != f"Bearer {self.token}":
                call.error, call.applied = "invalid_auth", False
                return 200, err("invalid_auth"), {}, 0.0
            fault = self._take_fault(method)
            if fault is None and method == "chat.postMessage":
                wait = self._paced(args)
                if wait is not None:
                    fault = Fault(1, method, 429, max(1, math.ceil(wait)))
            if fault is not None and not fault.apply:
                return self._fault_answer(call, fault)
            reply = handler(args)
            call.error = None if reply.get("ok") else reply.get("error")
            call.applied = reply.get("ok", False)
            if fault is not None:
                return self._fault_answer(call, fault)
            delay = consume(self._delays, method)
            if delay is None and self._hangs is not None:
                p, seconds, rng = self._hangs
                if rng.random() < p:
                    call.held = seconds
                    return 200, reply, {}, seconds
            call.held = delay.delay if delay else 0.0
            return 200, reply, {}, call.held

    def _upload(self, request: Request, file_id: str) -> tuple[int, Any, dict[str, str], float]:
        data = request.get_data()
        self._open.wait(timeout=30)
        with self._lock:
            call = Call("upload", {"file_id": file_id, "length": len(data)})
            self.calls.append(call)
            fault = self._take_fault("upload")
            if fault is not None and not fault.apply:
                call.applied, call.status = False, fault.status
                return fault.status, "upload failed", {}, 0.0
            status, text = self.ws.upload(file_id, data)
            call.status, call.applied = status, status == 200
            return status, text, {}, 0.0

    def _take_fault(self, method: str) -> Fault | None:
        fault = consume(self._faults, method)
        if fault is None and self._random is not None:
            p, statuses, rng, apply_ratio = self._random
            if rng.random() < p:
                status = rng.choice(statuses)
                apply = status >= 500 and rng.random() < apply_ratio
                fault = Fault(1, None, status, 1 if status == 429 else None, apply=apply)
        return fault

    def _fault_answer(self, call: Call, fault: Fault) -> tuple[int, Any, dict[str, str], float]:
        if not fault.apply:
            call.applied = False
        call.status, call.error = fault.status, fault.error
        headers: dict[str, str] = {}
        if fault.status == 429:
            headers["Retry-After"] = str(int(fault.retry_after or 1))
            call.error = "ratelimited"
            return 429, err("ratelimited"), headers, 0.0
        if fault.status >= 500:
            call.error = call.error or "internal_error"
            return fault.status, err(call.error), headers, 0.0
        return fault.status, err(fault.error or "fatal_error"), headers, 0.0

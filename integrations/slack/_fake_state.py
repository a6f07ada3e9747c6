"""Workspace state of the fake Slack: users, conversations, messages, views, the methods, faults.

Kept apart from the HTTP layer (fake.py) so each stays small. Every method takes the decoded
arguments and returns Slack's JSON reply (`ok: false` + `error` for API errors, HTTP 200).
"""

from __future__ import annotations

import itertools
import json
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qsl

from werkzeug.wrappers import Request

Reply = dict[str, Any]
BOT_USER = "UBOTFAKE01"


def err(code: str) -> Reply:
    return {"ok": False, "error": code}


def truthy(value: Any) -> bool:
    return value in (True, 1, "1", "true", "True")


@dataclass
class Conversation:
    id: str
    name: str | None = None
    user: str | None = None  # the other member of a DM
    messages: list[dict[str, Any]] = field(default_factory=list)


class Workspace:
    """Slack's side of the conversation, in memory; the caller holds the lock."""

    def __init__(self, now: Callable[[], float]) -> None:
        self.now = now
        self.users: dict[str, dict[str, Any]] = {}
        self.conversations: dict[str, Conversation] = {}
        self.ephemerals: list[dict[str, Any]] = []
        self.views: dict[str, dict[str, Any]] = {}
        self.expired_triggers: set[str] = set()
        self.files: dict[str, dict[str, Any]] = {}  # uploads: id -> name, length, data, ...
        self.upload_base = "http://127.0.0.1/"  # the fake's own address (set by FakeSlack)
        self._seq = itertools.count(1)

    # --- helpers ----------

    def _id(self, prefix: str) -> str:
        return f"{prefix}{next(self._seq):08d}"

    def _ts(self) -> str:
        return f"{int(self.now())}.{next(self._seq):06d}"

    def resolve(self, channel: str | None, *, by_name: bool) -> Conversation | None:
        """A conversation by id, or by `#name`/`name` when the method accepts names."""
        if not channel:
            return None
        if channel in self.conversations:
            return self.conversations[channel]
        if by_name:
            name = channel.lstrip("#")
            for conv in self.conversations.values():
                if conv.name == name:
                    return conv
        return None

    def find(self, conv: Conversation, ts: str) -> dict[str, Any] | None:
        return next((m for m in conv.messages if m["ts"] == ts), None)

    # --- methods ----------

    def auth_test(self, args: dict[str, Any]) -> Reply:
        return {
            "ok": True,
            "url": "https://fake.slack.com/",
            "team": "Fake Workspace",
            "user": "sla-bot",
            "team_id": "T0FAKE0001",
            "user_id": BOT_USER,
            "bot_id": "B0FAKE0001",
        }

    def users_lookupByEmail(self, args: dict[str, Any]) -> Reply:
        email = str(args.get("email") or "").lower()
        for user in self.users.values():
            if user["profile"]["email"].lower() == email:
                return {"ok": True, "user": user}
        return err("users_not_found")

    def users_info(self, args: dict[str, Any]) -> Reply:
        user = self.users.get(str(args.get("user") or ""))
        return {"ok": True, "user": user} if user else err("user_not_found")

    def conversations_open(self, args: dict[str, Any]) -> Reply:
        users = [u for u in str(args.get("users") or "").split(",") if u]
        if len(users) != 1:
            return err("invalid_arguments" if not users else "not_supported_in_fake")
        if users[0] not in self.users:
            return err("user_not_found")
        for conv in self.conversations.values():
            if conv.user == users[0]:
                return {"ok": True, "channel": {"id": conv.id}, "already_open": True}
        conv = Conversation(self._id("D"), user=users[0])
        self.conversations[conv.id] = conv
        return {"ok": True, "channel": {"id": conv.id}}

    def chat_postMessage(self, args: dict[str, Any]) -> Reply:
        conv = self.resolve(args.get("channel"), by_name=True)
        if conv is None:
            return err("channel_not_found")
        problem = _check_content(args)
        if problem:
            return err(problem)
        thread_ts = args.get("thread_ts")
        if thread_ts and self.find(conv, thread_ts) is None:
            return err("thread_not_found")
        message = {
            "type": "message",
            "user": BOT_USER,
            "ts": self._ts(),
            "text": args.get("text") or "",
            "blocks": args.get("blocks") or [],
            "metadata": args.get("metadata"),
        }
        if thread_ts:
            message["thread_ts"] = thread_ts
            message["reply_broadcast"] = truthy(args.get("reply_broadcast"))
        conv.messages.append(message)
        return {"ok": True, "channel": conv.id, "ts": message["ts"], "message": message}

    def chat_update(self, args: dict[str, Any]) -> Reply:
        conv = self.resolve(args.get("channel"), by_name=False)
        if conv is None:
            return err("channel_not_found")
        message = self.find(conv, str(args.get("ts")))
        if message is None:
            return err("message_not_found")
        problem = _check_content(args)
        if problem:
            return err(problem)
        message["text"] = args.get("text") or ""
        message["blocks"] = args.get("blocks") or []
        message["edited"] = {"user": BOT_USER, "ts": self._ts()}
        if args.get("metadata"):
            message["metadata"] = args["metadata"]
        return {"ok": True, "channel": conv.id, "ts": message["ts"], "text": message["text"]}

    def chat_postEphemeral(self, args: dict[str, Any]) -> Reply:
        conv = self.resolve(args.get("channel"), by_name=True)
        if conv is None:
            return err("channel_not_found")
        if args.get("user") not in self.users:
            return err("user_not_found")
        problem = _check_content(args)
        if problem:
            return err(problem)
        ts = self._ts()
        self.ephemerals.append({**args, "channel": conv.id, "message_ts": ts})
        return {"ok": True, "message_ts": ts}

    def views_open(self, args: dict[str, Any]) -> Reply:
        trigger = args.get("trigger_id")
        if not trigger:
            return err("invalid_arguments")
        if trigger in self.expired_triggers:
            return err("expired_trigger_id")
        view = dict(args.get("view") or {})
        view.update(id=self._id("V"), hash=self._ts(), trigger_id=trigger)
        self.views[view["id"]] = view
        return {"ok": True, "view": view}

    def views_update(self, args: dict[str, Any]) -> Reply:
        view_id = args.get("view_id")
        if view_id not in self.views:
            return err("not_found")
        view = dict(args.get("view") or {})
        view.update(id=view_id, hash=self._ts(), trigger_id=self.views[view_id]["trigger_id"])
        self.views[view_id] = view
        return {"ok": True, "view": view}

    # --- file uploads: files_upload_v2's three steps ----------

    def files_getUploadURLExternal(self, args: dict[str, Any]) -> Reply:
        filename, length = args.get("filename"), str(args.get("length") or "")
        if not filename or not length.isdigit() or int(length) <= 0:
            return err("invalid_arguments")
        file_id = self._id("F")
        self.files[file_id] = {
            "id": file_id,
            "name": str(filename),
            "length": int(length),
            "alt_txt": args.get("alt_txt"),
            "data": None,
            "completed": False,
        }
        return {
            "ok": True,
            "upload_url": f"{self.upload_base}upload/v1/{file_id}",
            "file_id": file_id,
        }

    def upload(self, file_id: str, data: bytes) -> tuple[int, str]:
        """The POST to an upload URL: the raw bytes; plain-text answer, like files.slack.com."""
        found = self.files.get(file_id)
        if found is None or found["completed"]:
            return 404, "Not Found"
        found["data"] = data
        return 200, f"OK - {len(data)}"

    def files_completeUploadExternal(self, args: dict[str, Any]) -> Reply:
        try:
            listed = json.loads(args.get("files") or "[]")
        except ValueError:
            return err("invalid_arguments")
        if not isinstance(listed, list) or not listed:
            return err("invalid_arguments")
        picked = []
        for entry in listed:
            found = self.files.get(str(entry.get("id")))
            if found is None or found["data"] is None or found["completed"]:
                return err("file_not_found")  # never uploaded, or completed already
            if len(found["data"]) != found["length"]:
                return err("invalid_arguments")
            picked.append((found, entry.get("title") or found["name"]))
        conv = None
        if args.get("channel_id"):
            conv = self.resolve(args["channel_id"], by_name=False)  # an id, never a #name
            if conv is None:
                return err("channel_not_found")
        thread_ts = args.get("thread_ts")
        if thread_ts and (conv is None or self.find(conv, thread_ts) is None):
            return err("invalid_thread_ts")
        shown = []
        for found, file_title in picked:
            png = found["data"].startswith(b"\x89PNG\r\n\x1a\n")
            found.update(completed=True, title=file_title, channel=conv.id if conv else None)
            found["mimetype"] = "image/png" if png else "application/octet-stream"
            shown.append(
                {k: found[k] for k in ("id", "name", "title", "mimetype")}
                | {"size": len(found["data"])}
            )
        if conv is not None:  # shared: a message carrying the files (in the thread, if any)
            message: dict[str, Any] = {
                "type": "message",
                "user": BOT_USER,
                "ts": self._ts(),
                "text": args.get("initial_comment") or "",
                "files": shown,
                "upload": True,
            }
            if thread_ts:
                message["thread_ts"] = thread_ts
            conv.messages.append(message)
        return {"ok": True, "files": shown}

    def conversations_history(self, args: dict[str, Any]) -> Reply:
        conv = self.resolve(args.get("channel"), by_name=False)
        if conv is None:
            return err("channel_not_found")
        top = [
            m
            for m in conv.messages
            if "thread_ts" not in m or m.get("reply_broadcast") or m["thread_ts"] == m["ts"]
        ]
        return self._page(top[::-1], args)

    def conversations_replies(self, args: dict[str, Any]) -> Reply:
        conv = self.resolve(args.get("channel"), by_name=False)
        if conv is None:
            return err("channel_not_found")
        root = str(args.get("ts"))
        if self.find(conv, root) is None:
            return err("thread_not_found")
        thread = [m for m in conv.messages if m["ts"] == root or m.get("thread_ts") == root]
        return self._page(thread, args)

    def _page(self, messages: list[dict[str, Any]], args: dict[str, Any]) -> Reply:
        oldest = float(args.get("oldest") or 0)
        limit = int(args.get("limit") or 100)
        with_meta = truthy(args.get("include_all_metadata"))
        picked = [m for m in messages if float(m["ts"]) >= oldest][:limit]
        out = [m if with_meta else {k: v for k, v in m.items() if k != "metadata"} for m in picked]
        return {"ok": True, "messages": out, "has_more": False}


def _check_content(args: dict[str, Any]) -> str | None:
    """Slack's own limits (50 blocks, 3000-char sections), so oversize messages fail here too."""
    blocks = args.get("blocks") or []
    if not (args.get("text") or blocks):
        return "no_text"
    if len(blocks) > 50:
        return "invalid_blocks"
    for block in blocks:
        text = (block.get("text") or {}).get("text") or ""
        if block.get("type") == "section" and len(text) > 3000:
            return "invalid_blocks"
    return None


@dataclass
class Fault:
    remaining: int
    method: str | None
    status: int = 429
    retry_after: float | None = None
    error: str | None = None
    apply: bool = False
    delay: float = 0.0

    def matches(self, method: str) -> bool:
        return self.remaining > 0 and self.method in (None, method)


def consume(rules: list[Fault], method: str) -> Fault | None:
    for rule in rules:
        if rule.matches(method):
            rule.remaining -= 1
            return rule
    return None


def decode_args(request: Request) -> dict[str, Any]:
    """Arguments as Slack reads them: query string, then a JSON or form body."""
    args: dict[str, Any] = dict(request.args)
    raw = request.get_data(as_text=True)
    if raw:
        if request.mimetype == "application/json":
            args.update(json.loads(raw))
        else:
            args.update(dict(parse_qsl(raw, keep_blank_values=True)))
    for key in ("blocks", "metadata", "view"):
        if isinstance(args.get(key), str):
            args[key] = json.loads(args[key])
    return args

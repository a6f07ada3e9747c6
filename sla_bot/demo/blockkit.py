"""Block Kit and Slack mrkdwn as HTML, for the demo page: what the service really sent.

Text in blocks is Slack-escaped (`&amp; &lt; &gt;`) by the service; here it is unescaped and
escaped again for HTML before any markup is added, so CRM text can never become HTML.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Mapping
from typing import Any

from markupsafe import Markup, escape

ButtonRenderer = Callable[[Mapping[str, Any], Mapping[str, Any]], Markup]
Names = Callable[[str], str | None]

_TOKEN = re.compile(r"<([^<>\s|][^<>|]*)(?:\|([^<>]*))?>")
_BOLD = re.compile(r"(?<![\w*])\*(?=\S)([^*\n]*?\S)\*(?![\w*])")
_ITALIC = re.compile(r"(?<![\w_])_(?=\S)([^_\n]*?\S)_(?![\w_])")
_STRIKE = re.compile(r"(?<![\w~])~(?=\S)([^~\n]*?\S)~(?![\w~])")
_CODE = re.compile(r"`([^`\n]+)`")
EMOJI = {
    ":information_source:": "\u2139\ufe0f",
    ":warning:": "\u26a0\ufe0f",
    ":white_check_mark:": "\u2705",
    ":rotating_light:": "\U0001f6a8",
    ":alarm_clock:": "\u23f0",
    ":bell:": "\U0001f514",
    ":fire:": "\U0001f525",
    ":wave:": "\U0001f44b",
}
_EMOJI = re.compile("|".join(re.escape(k) for k in EMOJI))


def slack_unescape(text: str) -> str:
    return text.replace("&lt;", "<").replace("&gt;", ">").replace("&amp;", "&")


def _inline(text: str) -> str:
    """Plain mrkdwn text (no links) as HTML; escaped first, then tags added."""
    html = str(escape(slack_unescape(text)))
    html = _CODE.sub(r"<code>\1</code>", html)
    html = _BOLD.sub(r"<b>\1</b>", html)
    html = _ITALIC.sub(r"<i>\1</i>", html)
    html = _STRIKE.sub(r"<s>\1</s>", html)
    html = _EMOJI.sub(lambda m: EMOJI[m.group(0)], html)
    return html.replace("\n", "<br>")


def mrkdwn(text: str, names: Names | None = None) -> Markup:
    """Slack mrkdwn as safe HTML: bold, italic, strike, code, links, mentions, a few emoji."""
    out: list[str] = []
    pos = 0
    for match in _TOKEN.finditer(text):
        out.append(_inline(text[pos : match.start()]))
        target, label = match.group(1), match.group(2)
        out.append(_token(target, label, names))
        pos = match.end()
    out.append(_inline(text[pos:]))
    return Markup("".join(out))


def _token(target: str, label: str | None, names: Names | None) -> str:
    if target[:1] in ("@", "#"):
        ident = target[1:]
        shown = label or (names(ident) if names else None) or ident
        return f'<span class="mention">{escape(target[0])}{escape(shown)}</span>'
    if target.startswith("!"):
        return f'<span class="mention">@{escape(label or target[1:])}</span>'
    url = slack_unescape(target)
    text = _inline(label) if label is not None else str(escape(url))
    if not url.startswith(("http://", "https://", "mailto:")):
        return text
    return f'<a href="{escape(url)}" rel="noopener noreferrer" target="_blank">{text}</a>'


def text_object(obj: Mapping[str, Any] | None, names: Names | None = None) -> Markup:
    if not obj:
        return Markup("")
    if obj.get("type") == "mrkdwn":
        return mrkdwn(str(obj.get("text") or ""), names)
    return Markup(str(escape(str(obj.get("text") or ""))).replace("\n", "<br>"))


def blocks_html(
    blocks: list[Mapping[str, Any]], button: ButtonRenderer, names: Names | None = None
) -> Markup:
    """A message's blocks; `button(element, block)` renders each interactive button."""
    parts: list[str] = []
    for block in blocks:
        kind = block.get("type")
        if kind == "section":
            inner = [f'<div class="text">{text_object(block.get("text"), names)}</div>']
            fields = block.get("fields") or []
            if fields:
                cells = "".join(f"<div>{text_object(f, names)}</div>" for f in fields)
                inner.append(f'<div class="fields">{cells}</div>')
            accessory = block.get("accessory")
            if accessory and accessory.get("type") == "button":
                inner.append(str(button(accessory, block)))
            parts.append(f'<div class="block section">{"".join(inner)}</div>')
        elif kind == "context":
            items = "".join(
                f"<span>{text_object(e, names)}</span>"
                for e in block.get("elements") or []
                if e.get("type") in ("mrkdwn", "plain_text")
            )
            parts.append(f'<div class="block context">{items}</div>')
        elif kind == "actions":
            buttons = "".join(
                str(button(e, block))
                for e in block.get("elements") or []
                if e.get("type") == "button"
            )
            parts.append(f'<div class="block actions">{buttons}</div>')
        elif kind == "header":
            parts.append(f'<div class="block header">{text_object(block.get("text"))}</div>')
        elif kind == "divider":
            parts.append('<hr class="block divider">')
        else:  # a block this page does not draw: show what was sent
            raw = json.dumps(block, indent=1)[:2000]
            parts.append(f'<pre class="block unknown">{escape(raw)}</pre>')
    return Markup("".join(parts))

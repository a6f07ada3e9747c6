"""`sla-bot demo`: see the product work in one minute, with no accounts.

Starts, all on 127.0.0.1 and in a temporary directory: the project's fake HubSpot and fake Slack,
the real service (`serve`'s code: gunicorn web workers and the background worker, SQLite), and a
local page. Sample contacts arrive through real signed webhooks; every Slack message is printed
as it is delivered. Ctrl-C (or --duration) stops everything and removes the directory.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import secrets
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

DEMO_RULES = Path("rules") / "examples" / "demo"
READY_TIMEOUT = 90.0


def register(sub: Any) -> None:
    p = sub.add_parser(
        "demo",
        help="see it work in one minute: the real service with a fake HubSpot and Slack",
        description="Run the real service against the project's fake HubSpot and fake Slack, "
        "on this machine only, with sample leads. Prints every Slack message as it is sent "
        "and serves a page (on 127.0.0.1) showing what each person received, with working "
        "buttons. Ctrl-C stops everything and leaves nothing behind.",
    )
    p.add_argument(
        "--rules",
        type=Path,
        help=f"rules directory to play (default: {DEMO_RULES}, targets in seconds, always open)",
    )
    p.add_argument(
        "--speed",
        type=float,
        default=None,
        help="run the demo's clock N times faster (1-600), e.g. --rules rules/ --speed 60 "
        "plays '5 business minutes' in 5 seconds (default 1)",
    )
    p.add_argument(
        "--port", type=int, default=8090, help="port of the demo page on 127.0.0.1 (0: any)"
    )
    p.add_argument("--leads", type=int, default=2, help="sample leads created at start")
    p.add_argument("--duration", type=float, help="stop after this many seconds")
    p.add_argument(
        "--exit-after-first-nudge",
        action="store_true",
        help="stop as soon as the first Slack message is delivered (exit 1 if --duration "
        "passes first)",
    )
    p.add_argument("--open", action="store_true", help="open the page in a web browser")
    p.set_defaults(func=cmd_demo)


def cmd_demo(args: argparse.Namespace) -> int:
    from sla_bot.demo.clock import MAX_SPEED

    speed = 1.0 if args.speed is None else args.speed
    if not 1.0 <= speed <= MAX_SPEED:
        print(f"sla-bot demo: --speed must be between 1 and {MAX_SPEED:g}", file=sys.stderr)
        return 2
    rules = args.rules or find_demo_rules()
    if rules is None:
        print(
            f"sla-bot demo: cannot find the demo rules ({DEMO_RULES}): run it from a clone of "
            "the repository, or pass --rules DIR",
            file=sys.stderr,
        )
        return 2
    demo = Demo(rules.resolve(), speed, args)
    return demo.run()


def find_demo_rules() -> Path | None:
    """The shipped demo rules: next to the package (a clone), else in the working directory."""
    here = Path(__file__).resolve().parents[2] / DEMO_RULES
    for candidate in (here, Path.cwd() / DEMO_RULES):
        if candidate.is_dir():
            return candidate
    return None


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def port_free(port: int) -> bool:
    with socket.socket() as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


class Stop(Exception):
    """SIGTERM: stop the demo as Ctrl-C would."""


@dataclass
class Demo:
    rules: Path
    speed: float
    args: argparse.Namespace
    started: float = field(default_factory=time.monotonic)
    next_contact: int = 101
    lock: threading.Lock = field(default_factory=threading.Lock)

    def say(self, text: str = "") -> None:
        print(text, flush=True)

    # --- the whole run ----------

    def run(self) -> int:
        """Start everything, wait, then stop it all in reverse order and remove the directory."""
        self.say("sla-bot demo: the real service with a fake HubSpot and a fake Slack,")
        self.say("all on 127.0.0.1 and in a temporary directory. Ctrl-C stops everything.")
        previous = signal.signal(signal.SIGTERM, _raise_stop)
        # Ctrl-C is how the demo is stopped, even when it was started with SIGINT ignored (as
        # a shell does for a command run in the background `&`): Python then leaves it ignored.
        interrupt = signal.signal(signal.SIGINT, signal.default_int_handler)
        try:
            with contextlib.ExitStack() as stack:
                try:
                    tmp = stack.enter_context(tempfile.TemporaryDirectory(prefix="sla-bot-demo-"))
                    ok = self._start(stack, Path(tmp))
                    return self._wait() if ok else 1
                except (KeyboardInterrupt, Stop):
                    return 130
                finally:  # a second Ctrl-C must not cut the clean-up short
                    signal.signal(signal.SIGINT, signal.SIG_IGN)
                    signal.signal(signal.SIGTERM, signal.SIG_IGN)
        finally:
            signal.signal(signal.SIGINT, interrupt)
            signal.signal(signal.SIGTERM, previous)
            self.say(
                "sla-bot demo: stopped; its processes, ports and temporary directory are gone."
            )

    def _start(self, stack: contextlib.ExitStack, tmp: Path) -> bool:
        from integrations.hubspot.fake import FakeHubSpot
        from integrations.slack.fake import FakeSlack
        from sla_bot.demo.clock import SpeedClock
        from sla_bot.demo.world import build_world
        from sla_bot.rules.holder import RulesHolder

        holder = RulesHolder(self.rules)
        holder.reload_if_changed()
        if not holder.loaded:
            print(f"sla-bot demo: the rules in {self.rules} are invalid:", file=sys.stderr)
            for error in holder.errors:
                print(f"  {error}", file=sys.stderr)
            return False
        self.holder = holder
        self.clock = SpeedClock(self.speed)
        hub_token, slack_token = f"demo-{secrets.token_hex(8)}", f"xoxb-demo-{secrets.token_hex(8)}"
        self.hubspot = stack.enter_context(FakeHubSpot(token=hub_token, now=self.clock.now))
        self.slack = stack.enter_context(FakeSlack(token=slack_token, now=self.clock.timestamp))
        self.world = build_world(
            holder.current().ruleset, self.hubspot, self.slack, self.clock.now().year
        )
        self.secret = secrets.token_urlsafe(24)
        self.signing_secret = secrets.token_hex(16)
        self.port = free_port()
        self.service_url = f"http://127.0.0.1:{self.port}"
        env = self._environment(tmp, hub_token, slack_token)
        self._banner()
        if not self._start_service(stack, tmp, env):
            return False
        self._start_page(stack, tmp)
        self._start_narrator(stack)
        samples = [self.world.sample(self.clock.now()) for _ in range(max(0, self.args.leads))]
        for props in samples:
            self.say(self.create_lead(dict(props)))
        if samples:
            self._expect_first_message(samples[0])
        self.say("\nMessages as Slack receives them (time in each recipient's zone):")
        return True

    def _environment(self, tmp: Path, hub_token: str, slack_token: str) -> dict[str, str]:
        keep = ("PATH", "HOME", "LANG", "LC_ALL", "TZ", "PYTHONPATH", "VIRTUAL_ENV", "SYSTEMROOT")
        env = {k: os.environ[k] for k in keep if k in os.environ}
        (tmp / "metrics").mkdir()
        env.update(
            DATABASE_URL=f"sqlite:///{tmp / 'demo.db'}",
            HUBSPOT_CLIENT_SECRET=self.secret,
            HUBSPOT_ACCESS_TOKEN=hub_token,
            HUBSPOT_API_BASE_URL=self.hubspot.base_url,
            HUBSPOT_PORTAL_ID=str(self.world.portal_id),
            SLACK_BOT_TOKEN=slack_token,
            SLACK_SIGNING_SECRET=self.signing_secret,
            SLACK_API_BASE_URL=self.slack.base_url,
            SLA_BOT_RULES_DIR=str(self.rules),
            SLA_BOT_HOST="127.0.0.1",
            SLA_BOT_PORT=str(self.port),
            SLA_BOT_WEB_WORKERS="2",
            SLA_BOT_WORKER_INTERVAL_SECONDS="0.5",
            SLA_BOT_RECONCILE_ENABLED="false",
            SLA_BOT_SQLITE_SYNCHRONOUS="NORMAL",
            SLA_BOT_ACK_SILENCE="2m",
            SLA_BOT_LOG_LEVEL="INFO",
            PROMETHEUS_MULTIPROC_DIR=str(tmp / "metrics"),
            XDG_RUNTIME_DIR=str(tmp),  # gunicorn's control socket, if it makes one
            PYTHONUNBUFFERED="1",
        )
        return env

    def _banner(self) -> None:
        pace = "real time" if self.speed == 1 else f"{self.speed:g}x faster than real time"
        self.say(f"  rules    {self.rules}  ({self.holder.current().ruleset.summary()})")
        self.say(f"  clock    {pace}")
        self.say(f"  service  {self.service_url}  (webhooks, /slack/actions, /readyz)")

    def _start_service(self, stack: contextlib.ExitStack, tmp: Path, env: dict[str, str]) -> bool:
        from sla_bot.server import die_with_parent

        log_path = tmp / "service.log"
        log = stack.enter_context(log_path.open("wb"))
        argv = [sys.executable, "-m", "sla_bot.demo.service", "serve", *self.clock.argv()]
        self.service = subprocess.Popen(
            argv,
            env=env,
            cwd=tmp,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # Ctrl-C reaches the demo, which stops the service in order
            preexec_fn=die_with_parent,  # noqa: PLW1509 - prctl only
        )
        stack.callback(self._stop_service)
        self.service_log = log_path
        return self._wait_ready()

    def _wait_ready(self) -> bool:
        import requests

        deadline = time.monotonic() + READY_TIMEOUT
        while time.monotonic() < deadline:
            if self.service.poll() is not None:
                self._service_failed("the service exited")
                return False
            with contextlib.suppress(requests.RequestException):
                if requests.get(self.service_url + "/readyz", timeout=1).status_code == 200:
                    self.say(f"  ready    after {time.monotonic() - self.started:.1f} s")
                    return True
            time.sleep(0.1)
        self._service_failed(f"the service was not ready within {READY_TIMEOUT:.0f} s")
        return False

    def _service_failed(self, why: str) -> None:
        tail = self.service_log.read_text("utf-8", errors="replace").splitlines()[-30:]
        print(f"sla-bot demo: {why}. Its log ends with:", file=sys.stderr)
        for line in tail:
            print(f"  {line}", file=sys.stderr)

    def _stop_service(self) -> None:
        proc = self.service
        if proc.poll() is None:
            proc.terminate()
            try:
                proc.wait(20)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(proc.pid, signal.SIGKILL)  # anything of its group still alive
        _wait_port_closed(self.port)

    def _start_page(self, stack: contextlib.ExitStack, tmp: Path) -> None:
        from werkzeug.serving import make_server

        from integrations.local_server import QuietHandler
        from sla_bot.db.engine import make_engine
        from sla_bot.demo.page import DemoContext, create_app
        from sla_bot.demo.slack_user import SlackUser

        engine = make_engine(f"sqlite:///{tmp / 'demo.db'}", busy_timeout_ms=2000)
        stack.callback(engine.dispose)
        ctx = DemoContext(
            world=self.world,
            hubspot=self.hubspot,
            slack=self.slack,
            engine=engine,
            clock=self.clock,
            user=SlackUser(
                self.service_url + "/slack/actions", self.signing_secret, self.clock.timestamp
            ),
            rules=self.holder,
            create_lead=self.create_lead,
            service_url=self.service_url,
        )
        port = self.args.port
        if port and not port_free(port):
            self.say(f"  (port {port} is in use; the page takes a free one: see --port)")
            port = 0
        server = make_server(
            "127.0.0.1", port, create_app(ctx), threaded=True, request_handler=QuietHandler
        )
        thread = threading.Thread(target=server.serve_forever, args=(0.1,), daemon=True)
        thread.start()
        stack.callback(thread.join, 5)
        stack.callback(server.server_close)
        stack.callback(server.shutdown)
        self.page_url = f"http://127.0.0.1:{server.server_port}/"
        self.say(f"  page     {self.page_url}  (127.0.0.1 only: it shows lead data)")
        if self.args.open:
            import webbrowser

            webbrowser.open(self.page_url)

    def _start_narrator(self, stack: contextlib.ExitStack) -> None:
        from sla_bot.demo.terminal import Narrator

        self.narrator = Narrator(self.slack, self.world, self.started).start()
        stack.callback(self.narrator.stop)

    # --- leads ----------

    def create_lead(self, props: dict[str, str]) -> str:
        """Create a contact in the fake HubSpot, then send its signed contact.creation webhook."""
        from sla_bot.webhook_tool import post

        with self.lock:
            contact = self.next_contact
            self.next_contact += 1
        now = self.clock.now()
        props.setdefault("createdate", now.isoformat())
        if props.get("hubspot_owner_id"):
            props.setdefault("hubspot_owner_assigneddate", now.isoformat())
        self.hubspot.add_contact(str(contact), props, created_at=now)
        event = {
            "eventId": contact,
            "subscriptionId": 1,
            "portalId": self.world.portal_id,
            "appId": 1,
            "occurredAt": int(now.timestamp() * 1000),
            "subscriptionType": "contact.creation",
            "attemptNumber": 0,
            "objectId": contact,
            "changeSource": "CRM",
        }
        url = self.service_url + "/webhooks/hubspot"
        answer = post(json.dumps([event]).encode(), url=url, secret=self.secret, now=now)
        name = " ".join(filter(None, (props.get("firstname"), props.get("lastname"))))
        company = f" ({props['company']})" if props.get("company") else ""
        owner = self.world.owner(props.get("hubspot_owner_id"))
        return (
            f"Lead {name or contact}{company}, owner {owner.name if owner else 'none'}: "
            f"contact {contact} created in HubSpot, signed webhook answered {answer.status_code}"
        )

    def _expect_first_message(self, props: dict[str, str]) -> None:
        """Say when the first message is due, from the rules' own timeline."""
        from sla_bot.rules.timeline import build_timeline

        if self.world.policy is None:
            self.say(
                "No lead rule of these rules could be matched with made-up properties, so the "
                "sample leads are ignored. Create one on the page with the properties your "
                "routing needs."
            )
            return
        timeline = build_timeline(
            self.holder.current().ruleset, self.world.portal_id, props, now=self.clock.now()
        )
        times = [
            r.deliver_at or s.due_at for s in timeline.steps for r in s.recipients if r.deliver_at
        ]
        if times:
            wait = max(0.0, self.clock.real_seconds(min(times)))
            when = "now" if wait < 1 else f"in about {wait:.0f} s"
            self.say(f"First message due {when} (the rules' own timeline).")

    # --- waiting ----------

    def _wait(self) -> int:
        duration = self.args.duration
        end = None if duration is None else self.started + duration
        while True:
            if self.service.poll() is not None:
                self._service_failed("the service stopped unexpectedly")
                return 1
            if self.args.exit_after_first_nudge and self.narrator.first_message.is_set():
                after = self.narrator.first_message_after or 0.0
                self.say(f"\nFirst message delivered {after:.1f} s after `sla-bot demo` started.")
                return 0
            if end is not None and time.monotonic() >= end:
                return 1 if self.args.exit_after_first_nudge else 0
            time.sleep(0.1)


def _raise_stop(_signum: int, _frame: Any) -> None:
    raise Stop()


def _wait_port_closed(port: int, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", port)) != 0:
                return
        time.sleep(0.05)

"""A webhook receiver for leadgate's events that verifies their Standard Webhooks signatures.

Python's standard library plus the `standardwebhooks` package. Run it beside `make run`:

    python examples/receiver.py --secret "$(leadgate deliveries secret local-receiver)"

It answers 204 to a correctly signed event (printing one line), 401 to anything else, and prints an
event it already has (same `webhook-id`) as a duplicate without acting on it twice: leadgate
delivers at least once, so a receiver drops what it has already seen.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from standardwebhooks import Webhook, WebhookVerificationError

MAX_BODY = 1_048_576


def handler_for(webhook: Webhook, out=sys.stdout):
    seen: set[str] = set()

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"  # keep-alive: the deliverer reuses its connection

        def do_POST(self):
            length = int(self.headers.get("content-length") or 0)
            if length > MAX_BODY:
                return self._answer(413)
            body = self.rfile.read(length)
            try:
                event = webhook.verify(body, dict(self.headers))
            except (WebhookVerificationError, ValueError):
                print("refused: the signature does not verify", file=out, flush=True)
                return self._answer(401)
            event_id = self.headers["webhook-id"]
            if event_id in seen:
                print(f"duplicate {event_id} (already handled)", file=out, flush=True)
                return self._answer(204)
            seen.add(event_id)
            data = event.get("data", {})
            route = data.get("route") if isinstance(data.get("route"), dict) else {}
            owner = (data.get("assignment") or {}).get("name")
            print(
                json.dumps(
                    {
                        "id": event_id,
                        "type": event.get("type"),
                        "lead_id": event.get("lead_id"),
                        "route": route.get("id"),
                        "owner": owner,
                        "due_at": route.get("due_at"),
                    }
                ),
                file=out,
                flush=True,
            )
            return self._answer(204)

        def _answer(self, status: int) -> None:
            self.send_response(status)
            self.send_header("content-length", "0")
            self.end_headers()

        def log_message(self, *args):
            pass  # one line per event is printed above

    return Handler


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=9000)
    parser.add_argument(
        "--secret",
        default=os.environ.get("WEBHOOK_SECRET"),
        help="the destination's whsec_ secret (default: $WEBHOOK_SECRET)",
    )
    args = parser.parse_args(argv)
    if not args.secret:
        parser.error("give the destination's signing secret: --secret whsec_... or WEBHOOK_SECRET")
    server = ThreadingHTTPServer((args.host, args.port), handler_for(Webhook(args.secret)))
    print(f"listening on http://{args.host}:{args.port}/", flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()


if __name__ == "__main__":
    main()

#!/usr/bin/env python3
"""The support agent's three HTTP tools, standard library only.

    python3 tool_server.py --port 18190

POST /lookup_order    read: an order by id (404 if unknown)
POST /update_address  write, idempotent: a repeated Idempotency-Key returns the first result
                      ("replayed": true) and changes nothing
POST /charge_card     external, NOT idempotent: every call charges (the ledger shows repeats)
GET  /calls           every call received, with its Idempotency-Key and traceparent

The two tools with side effects fence their callers (Kleppmann's fencing tokens): each keeps
the newest Baton-Fence it accepted per run (X-Baton-Run-Id) and refuses an older one with 409,
so a worker that stalled and lost the run to a newer owner cannot act late.
"""
import argparse
import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

ORDERS = {
    "A1": {"order_id": "A1", "status": "in transit", "address": "1 Main St", "amount": 42.5},
    "B7": {"order_id": "B7", "status": "delivered", "address": "9 Oak Ave", "amount": 19.0},
}
LOCK = threading.RLock()
CALLS: list[dict] = []
SEEN_KEYS: dict[str, dict] = {}
CHARGES: list[dict] = []
NEWEST_FENCE: dict[str, int] = {}


def stale_caller(run_id: str, fence_header: str) -> str | None:
    """Why a write must be refused (its fence is older than the run's newest), or None.

    Call with LOCK held, right where the effect happens; records the fence as the newest."""
    if not run_id or not fence_header:
        return None
    fence, newest = int(fence_header), NEWEST_FENCE.get(run_id, 0)
    if fence < newest:
        return f"stale caller: fence {fence} is older than {newest} for run {run_id}"
    NEWEST_FENCE[run_id] = fence
    return None


class Tools(BaseHTTPRequestHandler):
    server_version = "support-tools/1"

    def log_message(self, fmt: str, *args: object) -> None:
        print(f"{self.command} {self.path} key={self.headers.get('Idempotency-Key', '-')}", flush=True)

    def reply(self, status: int, body: object) -> None:
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("content-type", "application/json")
        self.send_header("content-length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_GET(self) -> None:
        if self.path == "/calls":
            with LOCK:
                self.reply(200, {"calls": CALLS, "charges": CHARGES})
        else:
            self.reply(404, {"error": f"no route {self.path}"})

    def do_POST(self) -> None:
        length = int(self.headers.get("content-length", "0"))
        try:
            args = json.loads(self.rfile.read(length) or b"{}")
        except json.JSONDecodeError:
            self.reply(400, {"error": "the body is not JSON"})
            return
        key = self.headers.get("Idempotency-Key", "")
        with LOCK:
            CALLS.append({"tool": self.path.strip("/"), "key": key, "args": args,
                          "traceparent": self.headers.get("traceparent", "")})
        handler = {"/lookup_order": lookup, "/update_address": update_address, "/charge_card": charge}.get(self.path)
        if handler is None:
            self.reply(404, {"error": f"no tool at {self.path}"})
            return
        with LOCK:  # the fence is checked where the effect happens, under the same lock
            stale = None
            if handler is not lookup:
                stale = stale_caller(self.headers.get("X-Baton-Run-Id", ""), self.headers.get("Baton-Fence", ""))
            status, body = (409, {"error": stale}) if stale else handler(args, key)
        self.reply(status, body)


def lookup(args: dict, _key: str) -> tuple[int, dict]:
    order = ORDERS.get(args.get("order_id", ""))
    if order is None:
        return 404, {"error": f"no order {args.get('order_id')!r}"}
    return 200, dict(order)


def update_address(args: dict, key: str) -> tuple[int, dict]:
    with LOCK:
        if key and key in SEEN_KEYS:
            return 200, {**SEEN_KEYS[key], "replayed": True}
        order = ORDERS.get(args.get("order_id", ""))
        if order is None:
            return 404, {"error": f"no order {args.get('order_id')!r}"}
        order["address"] = args["address"]
        result = {"order_id": order["order_id"], "address": order["address"], "replayed": False}
        if key:
            SEEN_KEYS[key] = result
        return 200, result


def charge(args: dict, key: str) -> tuple[int, dict]:
    with LOCK:
        charge_id = f"ch_{len(CHARGES) + 1}"
        CHARGES.append({"charge_id": charge_id, "key": key, "order_id": args.get("order_id"), "amount": args.get("amount")})
        return 200, {"charge_id": charge_id, "charged": args.get("amount")}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, default=18190)
    port = parser.parse_args().port
    server = ThreadingHTTPServer(("127.0.0.1", port), Tools)
    print(f"support tools listening on http://127.0.0.1:{port}", flush=True)
    server.serve_forever()


if __name__ == "__main__":
    main()

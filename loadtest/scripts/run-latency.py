"""Latency of a tenant's runs, submit to last update, from `batonctl list`: how many took more
than 1 s and 5 s (a healthy W1 run takes ~0.1 s), p50/p99/max of all, and of the runs slower
than 1 s (those a failure affected).
    python3 loadtest/scripts/run-latency.py <batonctl> <tenant>"""
import json
import subprocess
import sys

ctl, tenant = sys.argv[1], sys.argv[2]
token, runs = "", []
while True:
    args = [ctl, "--tenant", tenant, "--json", "list", "--page-size", "500"] + (["--page-token", token] if token else [])
    page = json.loads(subprocess.run(args, check=True, capture_output=True, text=True).stdout)
    runs += page["runs"]
    token = page["next_page_token"]
    if not token:
        break
took = sorted(r["updated_at_ms"] - r["created_at_ms"] for r in runs)
done = sum(1 for r in runs if r["status"] == "succeeded")
pick = lambda xs, p: xs[min(len(xs) - 1, round(p * (len(xs) - 1)))]
print(f"runs={len(runs)} succeeded={done} slower than 1 s={sum(t > 1000 for t in took)} "
      f"slower than 5 s={sum(t > 5000 for t in took)}")
for label, xs in (("run latency", took), ("affected (>1 s) run latency", [t for t in took if t > 1000])):
    if xs:
        print(f"{label} ms: p50={pick(xs, .5)} p99={pick(xs, .99)} max={xs[-1]}")

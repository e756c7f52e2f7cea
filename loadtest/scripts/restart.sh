#!/usr/bin/env bash
# Restart takeover: on the dev stack (BATON_PROFILE=release scripts/stack.sh up; its worker is
# named worker-1), SIGKILLs the only worker KILLS times while runs are mid-step and starts it
# again at once under the same name, as a pod restart does. For each kill it reports how long
# until every interrupted run committed its next step, counted from the SIGKILL (and from the
# new process's start); then p50/p99/max over the kills. The stack's worker is left running.
#   loadtest/scripts/restart.sh [kills] [runs-per-kill]
# RESTART_AS=<name> restarts it under another name, RESTART_AS= (empty) without one: what a
# restart cost before workers had names (the killed instance then times out of the group).
set -euo pipefail
cd "$(dirname "$0")/../.."
KILLS="${1:-20}"
RUNS="${2:-8}"
. loadtest/scripts/dev-stack.sh
require_stack
python3 - "$BIN" "$STATE" "$KILLS" "$RUNS" "${RESTART_AS-worker-1}" <<'PY'
import json, os, signal, subprocess, sys, time
bin_dir, state, kills, per_kill, name = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4]), sys.argv[5]
ctl = os.path.join(bin_dir, "batonctl")
tenant = f"restart-{int(time.time())}"

def batonctl(*args):
    out = subprocess.run([ctl, "--tenant", tenant, "--json", *args], check=True, capture_output=True, text=True)
    return json.loads(out.stdout)

def steps():
    page = batonctl("list", "--page-size", "500")
    return {r["run_id"]: (r.get("steps_completed", 0), r.get("status")) for r in page["runs"]}

def start_worker():
    env = dict(os.environ, BATON_WORKER_OPS_LISTEN="127.0.0.1:9461", BATON_WORKER_NAME=name)
    log = open(os.path.join(state, "worker.log"), "ab")
    proc = subprocess.Popen([os.path.abspath(os.path.join(bin_dir, "baton-worker"))], cwd=state, env=env,
                            stdout=log, stderr=log, start_new_session=True)
    with open(os.path.join(state, "worker.pid"), "w") as f:
        f.write(str(proc.pid))
    return proc

from_kill, from_start = [], []
sleepy = ["--step", 'sleep:{"ms":300}'] * 40
for k in range(kills):
    ids = [batonctl("submit", *sleepy)["run_id"] for _ in range(per_kill)]
    # Kill once every run has committed a step or two (each step takes 0.3 s).
    deadline = time.time() + 30
    while time.time() < deadline:
        now = steps()
        if all(now.get(i, (0, ""))[0] >= 2 for i in ids):
            break
        time.sleep(0.05)
    before = steps()
    pid = int(open(os.path.join(state, "worker.pid")).read())
    os.kill(pid, signal.SIGKILL)
    killed = time.time()
    time.sleep(0.1)
    start_worker()
    started = time.time()
    waiting = {i for i in ids if before[i][1] not in ("RUN_STATUS_SUCCEEDED", "succeeded")}
    while waiting and time.time() - killed < 120:
        now = steps()
        waiting = {i for i in waiting if now[i][0] <= before[i][0]}
        time.sleep(0.05)
    done = time.time()
    if waiting:
        print(f"kill {k + 1}: {len(waiting)} runs did not step again within 120 s", flush=True)
    from_kill.append(done - killed)
    from_start.append(done - started)
    print(f"kill {k + 1}: every run stepped again {from_kill[-1]:.2f} s after the SIGKILL "
          f"({from_start[-1]:.2f} s after the new worker started)", flush=True)
    # Let this round's runs finish before the next, so each kill interrupts fresh runs only.
    deadline = time.time() + 60
    while time.time() < deadline and any(steps()[i][0] < 40 for i in ids):
        time.sleep(0.5)

def pick(xs, p):
    xs = sorted(xs)
    return xs[min(len(xs) - 1, round(p * (len(xs) - 1)))]
for label, xs in (("from SIGKILL", from_kill), ("from restart", from_start)):
    print(f"RESULT {label}: kills={len(xs)} p50={pick(xs, .5):.2f}s p99={pick(xs, .99):.2f}s max={max(xs):.2f}s")
PY

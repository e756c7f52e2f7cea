#!/usr/bin/env python3
"""A support agent in Python, serving baton.v1.AgentService/Propose over gRPC.

    python3 agent.py --port 50071

Baton asks it for each step of a run: it gets the goal, the history (its latest recorded steps
with their outcomes; `step` says how many there are in all) and the allowed tools with their schemas, and answers one tool call or a finish.
Baton validates every proposal before anything runs; this agent never calls a tool itself.
The policy here is plain rules, so the example runs without a model:

  * no step yet            -> call lookup_order with the order id found in the goal
  * the lookup completed   -> finish with a summary of the order
  * a step failed or was rejected -> finish, explaining why
"""
import argparse
import json
import re
import signal
import sys
from concurrent import futures
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent / "gen"))

import grpc  # noqa: E402
from baton.v1 import agent_pb2, agent_pb2_grpc, run_pb2  # noqa: E402

ORDER_ID = re.compile(r"\border\s+([A-Za-z0-9-]+)", re.IGNORECASE)


class SupportAgent(agent_pb2_grpc.AgentServiceServicer):
    """Proposes the next step of a support run."""

    def Propose(self, request: agent_pb2.ProposeRequest, context: grpc.ServicerContext) -> agent_pb2.ProposeResponse:
        tools = [t.name for t in request.tools]
        print(f"run {request.run_id} step {request.step}: {len(request.history)} steps so far, tools {tools}", flush=True)
        usage = run_pb2.Usage(input_tokens=0, output_tokens=0, cost_micros=0)
        if not request.history:
            match = ORDER_ID.search(request.goal)
            if match is None or "lookup_order" not in tools:
                return agent_pb2.ProposeResponse(finish="I need an order id and the lookup_order tool.", usage=usage)
            call = run_pb2.ToolCall(tool="lookup_order", args_json=json.dumps({"order_id": match.group(1)}))
            return agent_pb2.ProposeResponse(call=call, usage=usage, text="Looking the order up first.")
        last = request.history[-1]
        if last.outcome in (run_pb2.STEP_OUTCOME_COMPLETED, run_pb2.STEP_OUTCOME_UNSPECIFIED):
            order = json.loads(last.output_json or "{}")
            summary = f"Order {order.get('order_id', '?')} is {order.get('status', 'unknown')}, going to {order.get('address', '?')}."
            return agent_pb2.ProposeResponse(finish=summary, usage=usage)
        why = last.error or last.reason_code or "unknown reason"
        return agent_pb2.ProposeResponse(finish=f"I could not look the order up: {why}", usage=usage)


def main() -> None:
    parser = argparse.ArgumentParser(description="A Baton agent over gRPC")
    parser.add_argument("--port", type=int, default=50071)
    port = parser.parse_args().port
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=4))
    agent_pb2_grpc.add_AgentServiceServicer_to_server(SupportAgent(), server)
    server.add_insecure_port(f"127.0.0.1:{port}")
    server.start()
    print(f"agent listening on 127.0.0.1:{port}", flush=True)
    signal.signal(signal.SIGTERM, lambda *_: server.stop(grace=1))
    server.wait_for_termination()


if __name__ == "__main__":
    main()

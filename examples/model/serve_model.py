#!/usr/bin/env python3
"""Serve a GGUF model over llama.cpp's OpenAI-compatible HTTP API, in-process via xllamacpp.

    python serve_model.py MODEL.gguf [--port 18187] [--threads 1] [--ctx 4096]
                          [--chat-template qwen_tools.jinja]

Endpoints: /v1/chat/completions (with `tools` -> `tool_calls`), /v1/models, /health.
Nothing is downloaded at run time. Runs until SIGTERM or SIGINT. scripts/model-demo.sh starts
and stops it; see README.md beside this file.
"""

import argparse
import os
import signal
import sys
import threading

import xllamacpp


def parse_args() -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("model", help="path of the .gguf weights")
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--port", type=int, default=18187)
    # One thread by default: on a busy 2-core machine, 2 threads make generation collapse.
    ap.add_argument("--threads", type=int, default=int(os.environ.get("BATON_MODEL_THREADS", "1")))
    ap.add_argument("--ctx", type=int, default=4096, help="context window in tokens")
    ap.add_argument(
        "--chat-template",
        default=os.environ.get("BATON_MODEL_CHAT_TEMPLATE", ""),
        help="Jinja chat template file (default: the one inside the GGUF)",
    )
    ap.add_argument("--alias", default="qwen", help="model name listed by /v1/models")
    # Greedy unless a request says otherwise (Baton sends `temperature` only when the run sets
    # one): at llama.cpp's default 0.8 the 0.5B model drops the ```json fence of a tool call
    # more often, and an unfenced call comes back as plain text, i.e. as a final answer.
    ap.add_argument("--temperature", type=float, default=0.0, help="default sampling temperature")
    return ap.parse_args()


def main() -> int:
    args = parse_args()
    if not os.path.isfile(args.model):
        print(f"serve_model: no model file at {args.model}", file=sys.stderr)
        return 2

    p = xllamacpp.CommonParams()
    p.model.path = args.model
    p.model_alias = {args.alias}
    p.hostnames = [args.host]
    p.port = args.port
    p.n_ctx = args.ctx
    p.n_parallel = 1  # one slot: Baton sends one completion per step, and the prompt cache stays warm
    p.cpuparams.n_threads = args.threads
    p.cpuparams_batch.n_threads = args.threads
    p.sampling.temp = args.temperature
    p.use_jinja = True  # render with a Jinja template and parse tool calls from the output
    if args.chat_template:
        with open(args.chat_template, encoding="utf-8") as f:
            p.chat_template = f.read()
    p.offline = True  # never reach for a model hub
    p.ui = False
    p.warmup = True

    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.set())

    server = xllamacpp.Server(p)  # loads the weights and starts listening
    print(
        f"serve_model: {os.path.basename(args.model)} as {args.alias!r} on http://{args.host}:{args.port}/v1 "
        f"({args.threads} thread(s), context {args.ctx}, default temperature {args.temperature}, "
        f"template {args.chat_template or 'from the GGUF'})",
        flush=True,
    )
    while not stop.wait(1.0):
        pass
    print("serve_model: stopping", flush=True)
    del server
    return 0


if __name__ == "__main__":
    sys.exit(main())

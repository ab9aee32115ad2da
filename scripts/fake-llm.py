#!/usr/bin/env python3
"""A fake OpenAI-compatible chat server for benchmarks (not for tests: those have their own in
tests/common). Every /v1/chat/completions call waits DELAY seconds, then finishes the file.

    scripts/fake-llm.py [PORT] [DELAY] [VERDICT]      defaults 8789, 1.5 and none

A review call (one that offers tools) is answered with finish_file: the model finds nothing of
its own. A verification call (no tools) is answered with VERDICT: `confirmed` (with a trigger) or
`rejected`; `none` answers it like a review call, which the agent reads as no verdict. With
`confirmed`, `redline bench --engine agent` shows the rules plus every candidate the agent asks
about: the most a perfect verifier could add, and the noise a credulous one would.

Point redline at it: REDLINE_LLM_BASE_URL=http://127.0.0.1:PORT/v1 REDLINE_LLM_MODEL=fake
"""
import json
import sys
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

PORT = int(sys.argv[1]) if len(sys.argv) > 1 else 8789
DELAY = float(sys.argv[2]) if len(sys.argv) > 2 else 1.5
VERDICT = sys.argv[3] if len(sys.argv) > 3 else "none"
CALLS = 0


class Handler(BaseHTTPRequestHandler):
    def do_POST(self):
        global CALLS
        body = json.loads(self.rfile.read(int(self.headers.get("content-length", 0))) or b"{}")
        CALLS += 1
        time.sleep(DELAY)
        chars = len(json.dumps(body.get("messages", [])))
        if VERDICT != "none" and not body.get("tools"):
            verdict = {"verdict": VERDICT, "trigger": "a caller passes ../../etc/passwd" if VERDICT == "confirmed" else "",
                       "reason": "fake verifier"}
            message = {"role": "assistant", "content": json.dumps(verdict)}
            finish = "stop"
        else:
            message = {"role": "assistant", "content": None, "tool_calls": [
                {"id": f"call_{CALLS}", "type": "function", "function": {"name": "finish_file", "arguments": json.dumps({"summary": "nothing to add"})}}]}
            finish = "tool_calls"
        reply = {
            "id": f"chatcmpl-{CALLS}", "object": "chat.completion", "created": int(time.time()), "model": body.get("model", "fake"),
            "choices": [{"index": 0, "finish_reason": finish, "message": message}],
            "usage": {"prompt_tokens": chars // 4, "completion_tokens": 20, "total_tokens": chars // 4 + 20},
        }
        data = json.dumps(reply).encode()
        self.send_response(200)
        self.send_header("content-type", "application/json")
        self.send_header("content-length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, *args):
        pass


if __name__ == "__main__":
    server = ThreadingHTTPServer(("127.0.0.1", PORT), Handler)
    print(f"http://127.0.0.1:{PORT}/v1", flush=True)
    server.serve_forever()

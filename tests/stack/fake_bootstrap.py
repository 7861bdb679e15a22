#!/usr/bin/env python3
"""A tiny custom runtime speaking the Lambda Runtime API, for testing the
emulator. The payload's "action" picks the behaviour."""

import json
import os
import sys
import time
import urllib.request

API = f"http://{os.environ['AWS_LAMBDA_RUNTIME_API']}/2018-06-01/runtime"


def post(path, body, headers=None):
    req = urllib.request.Request(f"{API}{path}", data=json.dumps(body).encode(), method="POST",
                                 headers=headers or {})
    urllib.request.urlopen(req).read()


while True:
    with urllib.request.urlopen(f"{API}/invocation/next") as r:
        rid = r.headers["Lambda-Runtime-Aws-Request-Id"]
        headers = {k: r.headers.get(k) for k in ("Lambda-Runtime-Aws-Request-Id", "Lambda-Runtime-Deadline-Ms",
                                                 "Lambda-Runtime-Invoked-Function-Arn", "Lambda-Runtime-Trace-Id")}
        event = json.loads(r.read() or b"null")
    action = event.get("action") if isinstance(event, dict) else None
    if action == "fail":
        post(f"/invocation/{rid}/error", {"errorMessage": "asked to fail", "errorType": "Fake.Failure"},
             {"Lambda-Runtime-Function-Error-Type": "Fake.Failure"})
    elif action == "crash":
        sys.exit(3)
    elif action == "sleep":
        time.sleep(event.get("seconds", 5))
        post(f"/invocation/{rid}/response", {"slept": True})
    else:
        env = {k: os.environ.get(k) for k in ("AWS_LAMBDA_FUNCTION_NAME", "AWS_LAMBDA_FUNCTION_MEMORY_SIZE",
                                              "AWS_REGION", "_HANDLER", "AWS_LAMBDA_FUNCTION_VERSION")}
        post(f"/invocation/{rid}/response", {"echo": event, "headers": headers, "env": env, "pid": os.getpid()})

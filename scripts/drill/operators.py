"""The operators' side: their topic read back through a queue, and the answer to an approval request."""

import json
import re
import time

from .console import clock, say
from .trigger import invoke


def read_queue(d, wait=1):
    """Takes the messages waiting on the operators' queue into d.inbox: (subject, parsed message or text)."""
    sqs = d.client("sqs", d.dr, "ministack")
    r = sqs.receive_message(QueueUrl=d.seeded["sns"]["queue_url"], MaxNumberOfMessages=10, WaitTimeSeconds=wait)
    msgs = r.get("Messages", [])
    for m in msgs:
        env = json.loads(m["Body"])
        try:
            body = json.loads(env.get("Message", ""))
        except ValueError:
            body = env.get("Message", "")
        d.inbox.append((env.get("Subject") or "", body))
        sqs.delete_message(QueueUrl=d.seeded["sns"]["queue_url"], ReceiptHandle=m["ReceiptHandle"])
    return len(msgs)


def notifications(d, since=0, wait_seconds=5.0):
    """The messages on the operators' queue from d.inbox[since] on. Reads until the queue is empty after a report
    arrived, or for wait_seconds (SNS -> SQS delivery is asynchronous)."""
    deadline = time.monotonic() + wait_seconds
    while True:
        if not read_queue(d) and (time.monotonic() > deadline
                                  or any("report" in subj.lower() for subj, _ in d.inbox[since:])):
            return d.inbox[since:]


def find_key(value, names):
    """The first string under one of `names` anywhere in a JSON value."""
    if isinstance(value, dict):
        for k, v in value.items():
            if k in names and isinstance(v, str) and v:
                return v
            found = find_key(v, names)
            if found:
                return found
    elif isinstance(value, list):
        for v in value:
            found = find_key(v, names)
            if found:
                return found
    return None


def answer_approval(d):
    """The operator's part of the approval gate: take the task token from the approval request on the operators'
    queue and answer it through detect, as the notification tells operators to."""
    if not (d.args.approval or d.args.stale_ami) or d.approval_answered:
        return
    read_queue(d, wait=0)
    for subject, body in d.inbox:
        token = find_key(body, ("task_token", "token", "taskToken")) if isinstance(body, (dict, list)) else None
        if token is None and isinstance(body, str):
            m = re.search(r'"?(?:task_token|token)"?\s*[:=]\s*"([^"]+)"', body)
            token = m.group(1) if m else None
        if token and token not in d.used_tokens:
            d.used_tokens.add(token)
            d.approval_requested = True
            if d.args.approval == "timeout":
                say(f"  {clock()}  drill: approval request received ({subject}); nobody answers "
                    f"(the gate times out after {d.approval_timeout()} s)")
                return
            d.approval_answered = True
            command = {"command": d.args.approval or "approve", "token": token, "reason": f"pilotlight drill {d.run_id}"}
            if d.args.stale_ami:
                from .stale_ami import before_answer
                command = before_answer(d, body, command)
            say(f"  {clock()}  drill: approval request received ({subject}); operator answers detect "
                f"{json.dumps({**command, 'token': token[:12] + '...'})}")
            decision = invoke(d, d.seeded["functions"]["detect"], command)
            say(f"  {clock()}  drill: detect -> {decision.get('outcome')}: {decision.get('reason')}")
            return

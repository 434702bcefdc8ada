"""The operators' side: their topic read back through a queue, and the answer to an approval request."""

import json
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


def answer_approval(d):
    """The operator's part of the approval gate: take the execution the approval request on the operators' queue
    names and answer it through detect, as the notification tells operators to (the mail carries no task token:
    detect reads it from the execution's history)."""
    if not (d.args.approval or d.args.stale_ami) or d.approval_answered:
        return
    read_queue(d, wait=0)
    for subject, body in d.inbox:
        if not isinstance(body, dict) or body.get("kind") != "approval":
            continue
        answer = (body.get("how_to_answer") or {}).get(d.args.approval if d.args.approval != "timeout" else "approve")
        execution = (answer or {}).get("execution") or body.get("execution")
        if execution and execution not in d.used_tokens:
            d.used_tokens.add(execution)
            d.approval_requested = True
            if d.args.approval == "timeout":
                say(f"  {clock()}  drill: approval request received ({subject}); nobody answers "
                    f"(the gate times out after {d.approval_timeout()} s)")
                return
            d.approval_answered = True
            command = {"command": d.args.approval or "approve", "execution": execution,
                       "reason": f"pilotlight drill {d.run_id}"}
            if d.args.stale_ami:
                from .stale_ami import before_answer
                command = before_answer(d, body, command)
            say(f"  {clock()}  drill: approval request received ({subject}); operator answers detect "
                f"{json.dumps(command)}")
            decision = invoke(d, d.seeded["functions"]["detect"], command)
            say(f"  {clock()}  drill: detect -> {decision.get('outcome')}: {decision.get('reason')}")
            return

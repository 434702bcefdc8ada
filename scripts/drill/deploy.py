"""template.yaml itself, through ministack's CloudFormation (SAM transform by aws-sam-translator): the debug
binaries zipped as `bootstrap` and the definition in S3, as `sam package` leaves them; the parameters are the
plan's values, mapped by the template's own wiring (contract.Contract.variable_parameters)."""

import copy
import io
import json
import os
import re
import tempfile
import time
import zipfile

from .console import DrillError, kv, phase, say

STACK_TIMEOUT_SECONDS = 120


def zip_bootstrap(path):
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED, compresslevel=1) as z:
        info = zipfile.ZipInfo("bootstrap", date_time=(2026, 1, 1, 0, 0, 0))
        info.external_attr = 0o100755 << 16  # regular file, executable
        info.compress_type = zipfile.ZIP_DEFLATED
        with open(path, "rb") as f:
            z.writestr(info, f.read(), compresslevel=1)
    return buf.getvalue()


def endpoint_environment(d):
    """The SDK's own endpoint variables (docs/contract.md): moto by default, gapfill and ministack where needed.
    SNS goes to ministack: the stack creates the operators' topic there; with --aurora RDS too (the global
    cluster lives there); with --replica-busy RDS goes through the fault proxy (to moto)."""
    moto, gapfill = d.args.moto_url, d.args.gapfill_url
    if d.outages:  # --primary-outage: the functions reach moto and gapfill through the outage proxies
        moto, gapfill = d.outages["moto"].url, d.outages["gapfill"].url
    rds = {"AWS_ENDPOINT_URL_RDS": d.args.ministack_url} if d.args.aurora else {}  # moto: HTTP 500 on failover
    if d.faults and d.args.replica_busy:  # only RDS through the fault proxy (its upstream: moto)
        rds = {"AWS_ENDPOINT_URL_RDS": d.faults.url}
    elif d.faults:  # --throttle: one fault proxy in front of both (it routes globalaccelerator/backup to gapfill)
        moto = gapfill = d.faults.url
    return {
        **rds,
        "AWS_ENDPOINT_URL": moto,
        "AWS_ENDPOINT_URL_GLOBAL_ACCELERATOR": gapfill,
        "AWS_ENDPOINT_URL_BACKUP": gapfill,
        "AWS_ENDPOINT_URL_CLOUDWATCH": d.args.ministack_url,
        "AWS_ENDPOINT_URL_SFN": d.args.ministack_url,
        "AWS_ENDPOINT_URL_SNS": d.args.ministack_url,
        # The flow lock: the table the template creates lives in ministack, where the state machine releases it.
        "AWS_ENDPOINT_URL_DYNAMODB": d.args.ministack_url,
        # The stack's own functions (readiness compares their plans; ministack runs them).
        "AWS_ENDPOINT_URL_LAMBDA": d.args.ministack_url,
        "AWS_EC2_METADATA_DISABLED": "true",
    }


def upload_artifacts(d, s3, bucket):
    """What `sam package` uploads: one bootstrap zip per function, the state machine definition."""
    keys = {}
    for binary in d.contract.functions():
        path = os.path.join(d.args.binaries, binary)
        if not os.access(path, os.X_OK):
            raise DrillError(f"{path} missing: build it with `cargo build --workspace --bins` (scripts/drill.sh does)")
        s3.put_object(Bucket=bucket, Key=f"{binary}.zip", Body=zip_bootstrap(path))
        keys[binary] = f"s3://{bucket}/{binary}.zip"
    machine = d.contract.template["Resources"][d.contract.state_machine()]["Properties"]
    definition = os.path.join(d.contract.root, machine["DefinitionUri"])
    s3.upload_file(definition, bucket, os.path.basename(definition))
    kv("artifacts", f"s3://{bucket}/ ({len(keys)} bootstrap zips, {machine['DefinitionUri']}) - what `sam package` uploads")
    return keys, f"s3://{bucket}/{os.path.basename(definition)}"


def packaged_template(d, code_uris, definition_uri, parameters, emulator_made):
    """The loaded template with `sam package`'s edits (CodeUri, DefinitionUri in S3) and the emulator endpoints
    added to Globals.Function.Environment: a structured edit, the rest is the project's template as it is.
    One more edit, only where an emulator's id breaks a parameter's AllowedPattern (moto's hosted zone ids do
    not start with Z as AWS's do): that parameter's pattern is dropped, and the drill says so."""
    t = copy.deepcopy(d.contract.template)
    functions = d.contract.functions()
    for binary, uri in code_uris.items():
        t["Resources"][functions[binary]]["Properties"]["CodeUri"] = uri
    t["Resources"][d.contract.state_machine()]["Properties"]["DefinitionUri"] = definition_uri
    t["Globals"]["Function"]["Environment"]["Variables"].update(endpoint_environment(d))
    for name, value in parameters.items():
        pattern = t["Parameters"][name].get("AllowedPattern")
        if name in emulator_made and pattern and not re.fullmatch(pattern, value):
            del t["Parameters"][name]["AllowedPattern"]
            say(f"  note: the emulator's {value!r} does not match {name}'s AllowedPattern {pattern} (AWS's ids do): "
                "pattern dropped for this deployment")
    return json.dumps(t, default=str)


def wait_for_stack(cfn, stack):
    deadline = time.monotonic() + STACK_TIMEOUT_SECONDS
    while True:
        st = cfn.describe_stacks(StackName=stack)["Stacks"][0]
        if not st["StackStatus"].endswith("IN_PROGRESS"):
            break
        if time.monotonic() > deadline:
            raise DrillError(f"stack {stack} still {st['StackStatus']} after {STACK_TIMEOUT_SECONDS} s "
                             "(see the ministack log in .tools/run/)")
        time.sleep(0.5)
    if st["StackStatus"] != "CREATE_COMPLETE":
        reasons = [f"{e['LogicalResourceId']} {e['ResourceStatus']}: {e.get('ResourceStatusReason')}"
                   for e in cfn.describe_stack_events(StackName=stack)["StackEvents"]
                   if "FAILED" in e["ResourceStatus"]]
        raise DrillError(f"stack {stack} {st['StackStatus']}: {st.get('StackStatusReason')}; " + "; ".join(reasons[:8]))
    return st


def deploy(d, variables, emulator_made):
    """Creates the stack from `variables` (the validated plan's) and reads back the plan the functions got."""
    region = d.dr
    phase(f"deploy template.yaml into ministack CloudFormation ({d.args.ministack_url}, {region})")
    s3 = d.client("s3", region, "ministack")
    bucket = d.name("artifacts").lower()
    s3.create_bucket(Bucket=bucket, **({} if region == "us-east-1" else
                                        {"CreateBucketConfiguration": {"LocationConstraint": region}}))
    code_uris, definition_uri = upload_artifacts(d, s3, bucket)

    parameters, not_taken = d.contract.parameter_values(variables)
    parameters.update(d.template_parameters)
    parameter_of = d.contract.variable_parameters()
    made = {parameter_of[k] for k in emulator_made if k in parameter_of}
    kv("parameters", f"{len(parameters)} from the plan (template.yaml maps them)"
       + (f"; not template parameters: {', '.join(not_taken)}" if not_taken else "")
       + (f"; this drill's: {', '.join(f'{k}={v}' for k, v in d.template_parameters.items())}"
          if d.template_parameters else ""))
    cfn = d.client("cloudformation", region, "ministack")
    stack = d.name("pilotlight")
    # As `sam deploy` does: the packaged template through S3 (TemplateURL takes up to 1 MB; a TemplateBody only
    # 51,200 bytes, which template.yaml outgrew).
    s3.put_object(Bucket=bucket, Key="template.json",
                  Body=packaged_template(d, code_uris, definition_uri, parameters, made).encode())
    template_url = f"{d.args.ministack_url.rstrip('/')}/{bucket}/template.json"
    cfn.create_stack(StackName=stack, TemplateURL=template_url,
                     Parameters=[{"ParameterKey": k, "ParameterValue": v} for k, v in parameters.items()],
                     Capabilities=["CAPABILITY_IAM", "CAPABILITY_AUTO_EXPAND"])
    st = wait_for_stack(cfn, stack)
    resources = len(cfn.list_stack_resources(StackName=stack)["StackResourceSummaries"])
    kv("stack", f"{stack} CREATE_COMPLETE ({resources} resources)")

    outputs = d.contract.outputs({o["OutputKey"]: o["OutputValue"] for o in st.get("Outputs", [])})
    d.seeded["functions"], d.seeded["state_machine"] = outputs["functions"], outputs["state_machine"]
    if "ProbeAlarm" in outputs["alarms"]:
        d.seeded["probe_alarm"] = outputs["alarms"]["ProbeAlarm"]
        kv("probe alarm", d.seeded["probe_alarm"])
    for binary, arn in d.seeded["functions"].items():
        kv(binary, arn)
    kv("state machine", d.seeded["state_machine"])
    subscribe_operators_queue(d, outputs["topic"])
    read_deployed_plan(d)


def subscribe_operators_queue(d, topic):
    """The operators' topic is the stack's own (in ministack): the drill reads it back through a queue there."""
    sqs = d.client("sqs", d.dr, "ministack")
    queue_url = sqs.create_queue(QueueName=d.name("operators-inbox"))["QueueUrl"]
    queue_arn = sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    d.client("sns", d.dr, "ministack").subscribe(TopicArn=topic, Protocol="sqs", Endpoint=queue_arn)
    d.seeded["sns"] = {"topic": topic, "queue_url": queue_url}
    kv("operators' topic", f"{topic} (stack output) -> SQS {queue_arn}")


def read_deployed_plan(d):
    """detect's environment is the plan as CloudFormation resolved it, plus the variables only promote-db gets (the
    promoted DB's size, a new replica's KMS key: template.yaml): checked by the product's own parser; the
    verification compares against this plan, not the one the drill asked for."""
    deployed = {}
    for binary in ("promote-db", "detect"):  # detect's values win: it has the plan's every shared variable
        env = d.lambda_client().get_function_configuration(FunctionName=d.seeded["functions"][binary])
        deployed.update({k: v for k, v in env["Environment"]["Variables"].items() if k.startswith("PILOTLIGHT_")})
    path = d.args.write_plan
    if not path:
        fd, path = tempfile.mkstemp(prefix="pilotlight-deployed-plan-", suffix=".env")
        os.close(fd)
    with open(path, "w") as f:
        f.write(f"# pilotlight drill {d.run_id}: the plan deployed into ministack (detect's environment)\n")
        f.writelines(f"{k}={deployed[k]}\n" for k in sorted(deployed))
    try:
        d.plan, _ = d.contract.check_plan(path, deployed)
    finally:
        if not d.args.write_plan:
            os.unlink(path)
    kv("deployed plan", f"{len(deployed)} PILOTLIGHT_* variables, valid (check-plan --json)"
       + (f", written to {d.args.write_plan}" if d.args.write_plan else ""))

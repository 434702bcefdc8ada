#!/usr/bin/env python3
"""Graph checks on an Amazon States Language definition that asl-validator does not do.

    python3 scripts/check_asl_graph.py statemachine/failover.asl.json [--substitutions A,B,...]
                                       [--write-substituted PATH]

The file is the definition as deployed, generated from shared/src/flow.rs (`pilotlight statemachine`), with
DefinitionSubstitutions placeholders (${Name}) still in it, each inside a JSON string. It is checked the way AWS
sees it: CloudFormation replaces every ${Name} textually before Step Functions parses the definition, so each
placeholder is replaced by a sample value of its type, chosen by its name:
  *Arn      -> arn:aws:lambda:us-east-1:123456789012:function:sample-<Name>  (inside a JSON string)
  *Seconds  -> 60                                                           (a JSON integer)
Any other name is an error (give it one of those suffixes, or teach SAMPLES below its type). A placeholder in
the wrong position (an ARN unquoted, a number quoted) then shows up as a JSON or schema error. The check reads
the generator's output, not the Rust that wrote it, so a generator bug cannot hide from it. With
--write-substituted, the substituted definition is written to PATH (for asl-validator).

Fail on: a definition that is not JSON after substitution, or that has a duplicate key in an object (JSON
parsers keep the last one silently); a state name used twice anywhere in the machine (Step Functions requires
names unique across all Parallel branches and Map processors too). For the top level and every Parallel
branch / Map processor (each is its own scope: transitions cannot leave it), fail on:
  * a Next / Default / Choices[].Next / Catch[].Next naming a state that does not exist in the scope;
  * a state unreachable from StartAt;
  * a non-terminal state with no way out (no Next/End, a Choice with no target), or one from which no
    terminal state (Succeed, Fail, End: true) can be reached;
  * a Choice without Default (unmatched input would fail with States.NoChoiceMatched);
  * an unbounded loop: every cycle must pass through a Choice with a rule whose target lies outside the
    cycle and from which every path ends in a Fail state (the poll-limit guard) or that records the failure in
    $.degraded.<key> (a best-effort phase's poll limit: the run goes on, warned), and that rule must be an
    upper bound (NumericGreaterThan[Equals][Path]) on a Variable that a Pass state on the same cycle
    increments (Parameters "<key>.$": "States.MathAdd(<that Variable>, n>0)" with ResultPath + key = it);
  * a Task without a non-empty Retry;
  * a callback Task (.waitForTaskToken) without TimeoutSeconds (it would wait up to a year), or one that
    retries on States.Timeout / States.ALL (a timeout is an answer; a retry would ask again with a new token).
With --substitutions, also fail on a ${Placeholder} that is not one of the given DefinitionSubstitutions
names, and on a DefinitionSubstitutions name the definition never uses. Python stdlib only. Prints what it
checked; exit 1 on any finding, 2 on a usage/parse error.
"""
from __future__ import annotations

import argparse
import json
import re
import sys

TERMINAL_TYPES = {"Succeed", "Fail"}
PLACEHOLDER = re.compile(r"\$\{([A-Za-z0-9_]+)\}")
# "States.MathAdd(<path>, <int>)": a poll counter step.
INCREMENT = re.compile(r"States\.MathAdd\(\s*(\$[A-Za-z0-9_.]+)\s*,\s*(-?\d+)\s*\)")
UPPER_BOUNDS = ("NumericGreaterThan", "NumericGreaterThanPath", "NumericGreaterThanEquals", "NumericGreaterThanEqualsPath")
# (name suffix, sample value as it appears in the substituted text)
SAMPLES = [
    ("Arn", lambda name: f"arn:aws:lambda:us-east-1:123456789012:function:sample-{name}"),
    ("Seconds", lambda name: "60"),
]


def sample_value(name: str) -> str | None:
    for suffix, value in SAMPLES:
        if name.endswith(suffix):
            return value(name)
    return None


def substitute(text: str, errors: list[str]) -> str:
    """Replaces every ${Name} the way CloudFormation does (textually), with a sample value of its type."""

    def one(match: re.Match) -> str:
        value = sample_value(match.group(1))
        if value is None:
            errors.append(
                f"placeholder ${{{match.group(1)}}}: no sample value for this name (suffixes known: "
                + ", ".join(f"*{suffix}" for suffix, _ in SAMPLES)
                + ")"
            )
            return match.group(0)
        return value

    return PLACEHOLDER.sub(one, text)


def no_duplicate_keys(pairs: list[tuple[str, object]]) -> dict:
    seen: dict = {}
    for key, value in pairs:
        if key in seen:
            raise ValueError(f"duplicate key {key!r} in one object")
        seen[key] = value
    return seen


class Scope:
    def __init__(self, name: str, definition: dict):
        self.name = name
        self.start = definition.get("StartAt")
        self.states: dict = definition.get("States") or {}

    def label(self, state: str) -> str:
        return f"{self.name}/{state}"


def edges(state: dict) -> list[tuple[str, str]]:
    """(kind, target) for every transition out of a state."""
    out = []
    if "Next" in state:
        out.append(("Next", state["Next"]))
    if state.get("Type") == "Choice":
        for i, rule in enumerate(state.get("Choices") or []):
            if "Next" in rule:
                out.append((f"Choices[{i}].Next", rule["Next"]))
        if "Default" in state:
            out.append(("Default", state["Default"]))
    for i, catcher in enumerate(state.get("Catch") or []):
        if "Next" in catcher:
            out.append((f"Catch[{i}].Next", catcher["Next"]))
    return out


def is_terminal(state: dict) -> bool:
    return state.get("Type") in TERMINAL_TYPES or state.get("End") is True


def reachable(graph: dict[str, set[str]], start: str) -> set[str]:
    seen, todo = set(), [start]
    while todo:
        node = todo.pop()
        if node in seen or node not in graph:
            continue
        seen.add(node)
        todo.extend(graph[node])
    return seen


def sccs(graph: dict[str, set[str]]) -> list[set[str]]:
    """Tarjan's strongly connected components (iterative)."""
    index, low, on_stack, stack, result, counter = {}, {}, set(), [], [], [0]
    for root in graph:
        if root in index:
            continue
        work = [(root, iter(sorted(graph[root])))]
        index[root] = low[root] = counter[0]
        counter[0] += 1
        stack.append(root)
        on_stack.add(root)
        while work:
            node, it = work[-1]
            advanced = False
            for nxt in it:
                if nxt not in graph:
                    continue
                if nxt not in index:
                    index[nxt] = low[nxt] = counter[0]
                    counter[0] += 1
                    stack.append(nxt)
                    on_stack.add(nxt)
                    work.append((nxt, iter(sorted(graph[nxt]))))
                    advanced = True
                    break
                if nxt in on_stack:
                    low[node] = min(low[node], index[nxt])
            if advanced:
                continue
            work.pop()
            if work:
                parent = work[-1][0]
                low[parent] = min(low[parent], low[node])
            if low[node] == index[node]:
                comp = set()
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    comp.add(member)
                    if member == node:
                        break
                result.append(comp)
    return result


def check_scope(scope: Scope, errors: list[str], notes: list[str], scopes: list[Scope]) -> None:
    states = scope.states
    if not states:
        errors.append(f"{scope.name}: no States")
        return
    if scope.start not in states:
        errors.append(f"{scope.name}: StartAt {scope.start!r} is not a state")

    graph: dict[str, set[str]] = {}
    for name, state in states.items():
        graph[name] = set()
        for kind, target in edges(state):
            if target not in states:
                errors.append(f"{scope.label(name)}: {kind} -> {target!r} does not exist in {scope.name}")
            else:
                graph[name].add(target)
        stype = state.get("Type")
        if stype == "Parallel":
            for i, branch in enumerate(state.get("Branches") or []):
                scopes.append(Scope(f"{scope.label(name)}.Branches[{i}]", branch))
        if stype == "Map":
            inner = state.get("ItemProcessor") or state.get("Iterator")
            if inner:
                scopes.append(Scope(f"{scope.label(name)}.ItemProcessor", inner))
        if stype == "Task" and not state.get("Retry"):
            errors.append(f"{scope.label(name)}: Task without Retry")
        if stype == "Task" and str(state.get("Resource", "")).endswith(".waitForTaskToken"):
            if "TimeoutSeconds" not in state and "TimeoutSecondsPath" not in state:
                errors.append(f"{scope.label(name)}: callback Task without TimeoutSeconds (it would wait up to a year)")
            for i, retrier in enumerate(state.get("Retry") or []):
                bad = {"States.Timeout", "States.ALL"} & set(retrier.get("ErrorEquals") or [])
                if bad:
                    errors.append(
                        f"{scope.label(name)}: callback Task Retry[{i}] retries {sorted(bad)}: a timeout is an answer, "
                        "and a retry asks again with a new token"
                    )
        if stype == "Choice":
            if not state.get("Choices"):
                errors.append(f"{scope.label(name)}: Choice without Choices")
            if "Default" not in state:
                errors.append(f"{scope.label(name)}: Choice without Default (unmatched input fails the execution)")
        elif not is_terminal(state) and "Next" not in state:
            errors.append(f"{scope.label(name)}: non-terminal {stype} state with neither Next nor End")

    # Reachability from StartAt.
    seen = reachable(graph, scope.start) if scope.start in states else set()
    for name in states:
        if name not in seen:
            errors.append(f"{scope.label(name)}: unreachable from StartAt {scope.start!r}")

    # Every state must be able to reach a terminal state.
    reverse: dict[str, set[str]] = {n: set() for n in graph}
    for n, targets in graph.items():
        for t in targets:
            reverse[t].add(n)
    can_finish = set()
    for n, state in states.items():
        if is_terminal(state):
            can_finish |= reachable(reverse, n)
    for name in states:
        if name not in can_finish:
            errors.append(f"{scope.label(name)}: no path from here to Succeed/Fail/End (a trap)")

    # Regions that can only end in a Fail state.
    def only_fails(start: str) -> bool:
        region = reachable(graph, start)
        ends = [n for n in region if is_terminal(states[n])]
        return bool(ends) and all(states[n].get("Type") == "Fail" for n in ends)

    # A poll limit may also end a best-effort phase: the exit records the failure in $.degraded.<key> (the
    # report's warning) and the flow goes on, so the run succeeds warned (flow::OnFailure::Degrade).
    def records_degraded(start: str) -> bool:
        return str(states[start].get("ResultPath", "")).startswith("$.degraded.")

    components = sccs(graph)
    comp_of = {n: i for i, comp in enumerate(components) for n in comp}

    # Counters: Pass states that add a positive constant to a path (ResultPath + Parameters key).
    increments: dict[str, set[str]] = {}  # path -> Pass states incrementing it
    for name, state in states.items():
        if state.get("Type") != "Pass":
            continue
        base = state.get("ResultPath", "$")
        for key, value in (state.get("Parameters") or {}).items():
            m = INCREMENT.fullmatch(value) if key.endswith(".$") and isinstance(value, str) else None
            if m and int(m.group(2)) > 0:
                target = f"{base}.{key[:-2]}" if base != "$" else f"$.{key[:-2]}"
                if m.group(1) == target:
                    increments.setdefault(target, set()).add(name)

    guards: dict[str, str] = {}
    for name, state in states.items():
        if state.get("Type") != "Choice":
            continue
        for i, rule in enumerate(state.get("Choices") or []):
            target = rule.get("Next")
            if not (target in states and comp_of.get(target) != comp_of.get(name)
                    and (only_fails(target) or records_degraded(target))):
                continue
            # The exit must be an upper bound on a counter that a Pass on the same loop increments; otherwise the
            # exit may never be taken.
            variable = rule.get("Variable")
            bound = next((op for op in UPPER_BOUNDS if op in rule), None)
            counters = {c for c in increments.get(variable, set()) if comp_of.get(c) == comp_of.get(name)}
            if bound and counters:
                guards[name] = f"Choices[{i}] {variable} {bound} -> {target}, counted by {', '.join(sorted(counters))}"
                break

    # With every guard Choice removed, no cycle may remain.
    unguarded = {n: {t for t in ts if t not in guards} for n, ts in graph.items() if n not in guards}
    loops = 0
    for comp in sccs(graph):
        if len(comp) > 1 or any(n in graph[n] for n in comp):
            loops += 1
            members = ", ".join(sorted(comp))
            guard_list = sorted(g for g in comp if g in guards)
            notes.append(
                f"{scope.name}: loop [{members}] bounded by "
                + (", ".join(f"{g} ({guards[g]})" for g in guard_list) or "NOTHING")
            )
    for comp in sccs(unguarded):
        if len(comp) > 1 or any(n in unguarded[n] for n in comp):
            errors.append(
                f"{scope.name}: unbounded loop through [{', '.join(sorted(comp))}]: no Choice on it exits, on an "
                "upper bound of a counter a Pass on the loop increments, to a path that ends in a Fail state or records "
                "$.degraded"
            )
    tasks = sum(1 for s in states.values() if s.get("Type") == "Task")
    notes.append(f"{scope.name}: {len(states)} states, {tasks} tasks, {loops} loop(s), all targets/reachability checked")


def collect_placeholders(node, found: set[str]) -> None:
    if isinstance(node, dict):
        for v in node.values():
            collect_placeholders(v, found)
    elif isinstance(node, list):
        for v in node:
            collect_placeholders(v, found)
    elif isinstance(node, str):
        found.update(PLACEHOLDER.findall(node))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("definition")
    parser.add_argument("--substitutions", help="comma-separated DefinitionSubstitutions names")
    parser.add_argument("--write-substituted", metavar="PATH", help="write the definition with sample values here")
    args = parser.parse_args()
    try:
        with open(args.definition, encoding="utf-8") as f:
            raw = f.read()
    except OSError as e:
        print(f"check_asl_graph: cannot read {args.definition}: {e}", file=sys.stderr)
        return 2

    errors: list[str] = []
    notes: list[str] = []

    # Placeholders are found in the raw text: they may stand where JSON allows no string (numbers).
    placeholders = set(PLACEHOLDER.findall(raw))
    if args.substitutions is not None:
        allowed = {s.strip() for s in args.substitutions.split(",") if s.strip()}
        for p in sorted(placeholders - allowed):
            errors.append(f"placeholder ${{{p}}} is not in DefinitionSubstitutions ({', '.join(sorted(allowed))})")
        for p in sorted(allowed - placeholders):
            errors.append(f"DefinitionSubstitutions name {p} is not used by the definition (a typo on either side?)")
        notes.append(f"placeholders {sorted(placeholders)} = DefinitionSubstitutions")
    else:
        notes.append(f"placeholders used: {sorted(placeholders)} (not cross-checked: no --substitutions)")

    text = substitute(raw, errors)
    notes.append(
        "substituted as AWS would: "
        + ", ".join(f"${{{p}}} -> {sample_value(p)}" for p in sorted(placeholders) if sample_value(p) is not None)
    )
    if args.write_substituted:
        with open(args.write_substituted, "w", encoding="utf-8") as f:
            f.write(text)
    try:
        doc = json.loads(text, object_pairs_hook=no_duplicate_keys)
    except ValueError as e:
        for err in errors:
            print(f"ERROR: {err}", file=sys.stderr)
        print(f"check_asl_graph: {args.definition}: not JSON after substitution: {e}", file=sys.stderr)
        return 2

    scopes = [Scope("top", doc)]
    owners: dict[str, str] = {}
    while scopes:
        scope = scopes.pop(0)
        for name in scope.states:
            if name in owners:
                errors.append(f"state name {name!r} is used in {owners[name]} and in {scope.name}: names must be unique in the whole machine")
            else:
                owners[name] = scope.name
        check_scope(scope, errors, notes, scopes)
    notes.append(f"{len(owners)} state names, unique across all scopes")

    collected: set[str] = set()
    collect_placeholders(doc, collected)
    if collected:
        errors.append(f"placeholders left after substitution: {sorted(collected)}")

    for n in notes:
        print(f"  {n}")
    if errors:
        for e in errors:
            print(f"ERROR: {e}", file=sys.stderr)
        print(f"check_asl_graph: {args.definition}: {len(errors)} problem(s)", file=sys.stderr)
        return 1
    print(f"check_asl_graph: {args.definition}: OK")
    return 0


if __name__ == "__main__":
    sys.exit(main())

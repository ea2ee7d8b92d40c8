#!/usr/bin/env python3
"""Turns the raw wrk outputs of one bench/run into the results tables.

Usage: report.py RAW_DIR MARKDOWN_OUT

RAW_DIR holds, for every run, `<operation>.<server>.wrk` (wrk's own output, with --latency) and
`<operation>.<server>.cpu` ("server_cpu_seconds wrk_cpu_seconds wall_seconds
machine_busy_cpu_seconds", measured over the wrk run), plus
`meta.env` (KEY=VALUE lines written by bench/run). The plain-text tables go to stdout, the
Markdown version to MARKDOWN_OUT. Standard library only.

The exit status is 1 when any run saw a non-2xx response or a socket error (other than the
peer closing connections), so bench/run can fail loudly; the tables are written either way.
"""

import os
import re
import sys

# (operation key, description) in table order; every one runs on both servers.
COMPARED_OPERATIONS = [
    ("get_user", "GET /Users/{id}"),
    ("filter_users", 'GET /Users?filter=userName eq "…"'),
    ("post_user", "POST /Users"),
    ("patch_user", "PATCH /Users/{id} replace active"),
]
# Scimitar only: one membership change on a small group, then on a huge one, first under the
# same load as the compared operations, then one connection at a time.
GROUP_LOADS = [("concurrent", "same load as above"), ("serial", "1 connection")]
SERVERS = [("scimitar", "scimitar"), ("peer", "scim2-server")]

# Targets from the performance issue.
GET_RATIO_TARGET = 50.0
POST_RATIO_TARGET = 10.0
GROUP_TOLERANCE = 0.20

LATENCY_UNITS_IN_MS = {"us": 0.001, "ms": 1.0, "s": 1000.0, "m": 60_000.0, "h": 3_600_000.0}


def latency_ms(text):
    match = re.fullmatch(r"([\d.]+)(us|ms|s|m|h)", text.strip())
    if not match:
        raise ValueError(f"unexpected latency {text!r}")
    return float(match.group(1)) * LATENCY_UNITS_IN_MS[match.group(2)]


def parse_wrk(text):
    """Reads the numbers this report uses out of wrk's output."""
    result = {"requests": 0, "non_2xx": 0, "socket_errors": {}, "rps": None, "p50": None, "p99": None}
    for line in text.splitlines():
        line = line.strip()
        if match := re.match(r"Requests/sec:\s+([\d.]+)", line):
            result["rps"] = float(match.group(1))
        elif match := re.match(r"(50|99)(?:\.0+)?%\s+(\S+)", line):
            result["p" + match.group(1)] = latency_ms(match.group(2))
        elif match := re.match(r"(\d+) requests in", line):
            result["requests"] = int(match.group(1))
        elif match := re.match(r"Non-2xx or 3xx responses:\s+(\d+)", line):
            result["non_2xx"] = int(match.group(1))
        elif line.startswith("Socket errors:"):
            for name, count in re.findall(r"(connect|read|write|timeout) (\d+)", line):
                result["socket_errors"][name] = int(count)
    return result


def load_runs(raw_dir):
    runs = {}
    for name in sorted(os.listdir(raw_dir)):
        if not name.endswith(".wrk"):
            continue
        operation, server = name[: -len(".wrk")].split(".", 1)
        with open(os.path.join(raw_dir, name)) as wrk_file:
            run = parse_wrk(wrk_file.read())
        cpu_path = os.path.join(raw_dir, f"{operation}.{server}.cpu")
        if os.path.exists(cpu_path):
            with open(cpu_path) as cpu_file:
                server_cpu, wrk_cpu, wall, machine_busy = (float(field) for field in cpu_file.read().split())
            if wall:
                run["server_cpu_share"] = server_cpu / wall
                run["wrk_cpu_share"] = wrk_cpu / wall
                # Whatever else ran meanwhile (other builds on a shared machine): the noise.
                run["other_cpu_share"] = max(0.0, machine_busy - server_cpu - wrk_cpu) / wall
        runs[(operation, server)] = run
    return runs


def load_meta(raw_dir):
    meta = {}
    path = os.path.join(raw_dir, "meta.env")
    if os.path.exists(path):
        with open(path) as meta_file:
            for line in meta_file:
                key, _, value = line.rstrip("\n").partition("=")
                if key:
                    meta[key] = value
    return meta


def run_problems(run, server):
    """Describes what went wrong in a run, or returns an empty list."""
    problems = []
    if run["rps"] is None:
        problems.append("no result (wrk failed?)")
    if run["non_2xx"]:
        problems.append(f"{run['non_2xx']} non-2xx")
    errors = dict(run["socket_errors"])
    # wsgiref speaks HTTP/1.0 and closes every connection after its response; wrk then counts
    # the close it reads as a read error on some systems. It is the peer's design, not a fault.
    if server == "peer":
        errors.pop("read", None)
    for name, count in errors.items():
        if count:
            problems.append(f"{count} socket {name} errors")
    return problems


def number(value, digits=0):
    return "–" if value is None else f"{value:,.{digits}f}"


def ms(value):
    if value is None:
        return "–"
    if value >= 1000:
        return f"{value / 1000:.2f} s"
    return f"{value:.2f} ms" if value < 10 else f"{value:.1f} ms"


def percent(value):
    return "–" if value is None else f"{value * 100:.0f}%"


def ratio(numerator, denominator):
    if numerator is None or not denominator:
        return None
    return numerator / denominator


def verdict(met):
    return "**met**" if met else "**not met**" if met is not None else "not measured"


def build_tables(runs, meta):
    """Returns (list of (title, header, rows, notes)), target lines, problem lines."""
    problems = []
    for (operation, server), run in sorted(runs.items()):
        for problem in run_problems(run, server):
            problems.append(f"{operation} on {dict(SERVERS)[server]}: {problem}")

    def flagged(operation, server, text):
        run = runs.get((operation, server))
        return text + (" ⚠" if run and run_problems(run, server) else "")

    comparison_rows = []
    for operation, description in COMPARED_OPERATIONS:
        ours = runs.get((operation, "scimitar"), {})
        peer = runs.get((operation, "peer"), {})
        speedup = ratio(ours.get("rps"), peer.get("rps"))
        comparison_rows.append([
            description,
            flagged(operation, "scimitar", number(ours.get("rps"))),
            ms(ours.get("p50")),
            ms(ours.get("p99")),
            flagged(operation, "peer", number(peer.get("rps"))),
            ms(peer.get("p50")),
            ms(peer.get("p99")),
            "–" if speedup is None else f"{speedup:,.1f}×",
        ])

    small_size = int(meta.get("SMALL_GROUP_SIZE", "10"))
    big_size = int(meta.get("BIG_GROUP_SIZE", "100000"))
    signed = lambda value: "–" if value is None else f"{value * 100:+.1f}%"  # noqa: E731

    def change(big_value, small_value):
        if big_value is None or not small_value:
            return None
        return big_value / small_value - 1

    group_rows = []
    group_changes = {}
    for load, load_label in GROUP_LOADS:
        small = runs.get((f"group_small_{load}", "scimitar"), {})
        big = runs.get((f"group_big_{load}", "scimitar"), {})
        if not small and not big:
            continue
        for size, run, operation in ((small_size, small, f"group_small_{load}"), (big_size, big, f"group_big_{load}")):
            group_rows.append([
                load_label,
                f"{size:,} members",
                flagged(operation, "scimitar", number(run.get("rps"), 1)),
                ms(run.get("p50")),
                ms(run.get("p99")),
            ])
        changes = tuple(change(big.get(key), small.get(key)) for key in ("rps", "p50", "p99"))
        group_changes[load] = changes
        group_rows.append([load_label, "difference (big vs small)"] + [signed(value) for value in changes])

    cpu_rows = []
    group_operations = [
        (f"group_{group}_{load}", f"group PATCH add/remove, {size:,} members, {load_label}")
        for load, load_label in GROUP_LOADS
        for group, size in (("small", small_size), ("big", big_size))
    ]
    for operation, description in COMPARED_OPERATIONS + group_operations:
        for server, server_name in SERVERS:
            run = runs.get((operation, server))
            if run is None:
                continue
            cpu_rows.append([
                description,
                server_name,
                percent(run.get("server_cpu_share")),
                percent(run.get("wrk_cpu_share")),
                percent(run.get("other_cpu_share")),
                f"{run['requests']:,}",
                str(run["non_2xx"]),
            ])

    get_ratio = ratio(runs.get(("get_user", "scimitar"), {}).get("rps"), runs.get(("get_user", "peer"), {}).get("rps"))
    post_ratio = ratio(runs.get(("post_user", "scimitar"), {}).get("rps"), runs.get(("post_user", "peer"), {}).get("rps"))
    durable = meta.get("DURABILITY_VERDICT")
    post_clean = not run_problems(runs.get(("post_user", "scimitar"), {"rps": None, "non_2xx": 0, "socket_errors": {}}), "scimitar")
    targets = []
    get_met = None if get_ratio is None else get_ratio >= GET_RATIO_TARGET
    targets.append(
        f"GET /Users/{{id}} ≥ {GET_RATIO_TARGET:g}× scim2-server: "
        f"{'–' if get_ratio is None else f'{get_ratio:,.1f}×'} → {verdict(get_met)}"
    )
    post_met = None if post_ratio is None else (post_ratio >= POST_RATIO_TARGET and durable == "passed" and post_clean)
    targets.append(
        f"POST /Users ≥ {POST_RATIO_TARGET:g}× scim2-server with every 2xx durably committed: "
        f"{'–' if post_ratio is None else f'{post_ratio:,.1f}×'}, durability check {durable or 'not run'} "
        f"→ {verdict(post_met)}"
    )
    for load, load_label in GROUP_LOADS:
        if load not in group_changes:
            continue
        rps_change, p50_change, _ = group_changes[load]
        group_met = None
        if rps_change is not None and p50_change is not None:
            group_met = rps_change >= -GROUP_TOLERANCE and p50_change <= GROUP_TOLERANCE
        errors = [
            problem
            for operation in (f"group_small_{load}", f"group_big_{load}")
            if (operation, "scimitar") in runs
            for problem in run_problems(runs[(operation, "scimitar")], "scimitar")
        ]
        targets.append(
            f"Membership change on the {big_size:,}-member group within {GROUP_TOLERANCE:.0%} of the "
            f"{small_size:,}-member group (req/s and p50), {load_label}: req/s {signed(rps_change)}, "
            f"p50 {signed(p50_change)} → {verdict(group_met)}"
            + (f" (but the runs had errors: {'; '.join(errors)})" if errors else "")
        )

    tables = [
        (
            "Scimitar vs scim2-server (same wrk load on both)",
            ["operation", "scimitar req/s", "p50", "p99", "scim2-server req/s", "p50", "p99", "ratio (req/s)"],
            comparison_rows,
        ),
        (
            "Scimitar: one membership change on a small vs a huge group",
            ["load", "group", "req/s", "p50", "p99"],
            group_rows,
        ),
        (
            "CPU split during each run (share of one core; the machine has "
            f"{meta.get('NPROC', '?')})",
            ["operation", "server", "server CPU", "wrk CPU", "other processes CPU", "requests", "non-2xx"],
            cpu_rows,
        ),
    ]
    return tables, targets, problems


def text_table(header, rows):
    widths = [max(len(str(row[i])) for row in [header] + rows) for i in range(len(header))]
    line = lambda cells: "  ".join(str(cell).ljust(width) for cell, width in zip(cells, widths))  # noqa: E731
    return "\n".join([line(header), line(["-" * width for width in widths])] + [line(row) for row in rows])


def markdown_table(header, rows):
    escape = lambda cell: str(cell).replace("|", "\\|")  # noqa: E731
    lines = ["| " + " | ".join(escape(cell) for cell in header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(escape(cell) for cell in row) + " |" for row in rows]
    return "\n".join(lines)


def meta_lines(meta):
    keys = [
        ("DATE", "date"),
        ("MACHINE", "machine"),
        ("LOAD_BEFORE", "load average before the runs"),
        ("WRK", "wrk load (every run)"),
        ("SEEDED_USERS", "users seeded on both servers"),
        ("SEED_SECONDS_SCIMITAR", "seeding time, scimitar (s)"),
        ("SEED_SECONDS_PEER", "seeding time, scim2-server (s)"),
        ("GROUP_SETUP_SECONDS", "building the groups, scimitar (s)"),
        ("GROUP_METHOD", "group benchmark"),
        ("GROUP_SIZES_AFTER", "group sizes at the end of each group run (reset to the exact size before the next)"),
        ("TOTAL_SECONDS", "whole command (s)"),
        ("LOAD_AFTER", "load average after the runs"),
        ("DURABILITY", "durability check"),
        ("FSYNC", "fsync check"),
    ]
    return [f"- {label}: {meta[key]}" for key, label in keys if meta.get(key)]


def main(argv):
    if len(argv) != 3:
        raise SystemExit(__doc__)
    raw_dir, markdown_path = argv[1], argv[2]
    runs, meta = load_runs(raw_dir), load_meta(raw_dir)
    tables, targets, problems = build_tables(runs, meta)

    for title, header, rows in tables:
        print(f"\n{title}\n")
        print(text_table(header, rows))
    print("\nTargets")
    for target in targets:
        print("  " + target.replace("**", ""))
    print("\nErrors: " + ("none" if not problems else ""))
    for problem in problems:
        print("  ⚠ " + problem)

    markdown = ["# Latest benchmark run", "", "Written by `bench/run`; see BENCHMARKS.md for what each operation does.", ""]
    markdown += meta_lines(meta) + [""]
    for title, header, rows in tables:
        markdown += [f"## {title}", "", markdown_table(header, rows), ""]
    markdown += ["## Targets", ""] + [f"- {target}" for target in targets] + [""]
    markdown += ["## Errors", ""]
    markdown += [f"- ⚠ {problem}" for problem in problems] if problems else ["None: every run had only 2xx responses and no socket errors."]
    markdown.append("")
    with open(markdown_path, "w") as markdown_file:
        markdown_file.write("\n".join(markdown))
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))

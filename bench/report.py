#!/usr/bin/env python3
"""Turns the raw wrk outputs of one bench/run into the results tables.

Usage: report.py RAW_DIR MARKDOWN_OUT

RAW_DIR holds, for every run, `<operation>.<server>.wrk` (wrk's own output, with --latency) and
`<operation>.<server>.cpu` ("server_cpu_seconds wrk_cpu_seconds wall_seconds
machine_busy_cpu_seconds [postgres_cpu_seconds]", measured over the wrk run), plus
`meta.env` (KEY=VALUE lines written by bench/run). Servers: `scimitar` (Scimitar on SQLite),
`scimitar-pg` (Scimitar on PostgreSQL), `peer` (scim2-server).

The compared operations (get_user, filter_users, patch_user, post_user on every server) run in
interleaved rounds and are named `<operation>.<server>.r<N>.wrk` and `.cpu` for round N; an
older directory without the round in the names holds one round. For each operation and server
the comparison table shows the median round by req/s (the lower middle one for an even count),
with that round's p50 and p99, and the CPU-split table that same round. The ratio against
scim2-server, and the GET and POST targets, use the median of the per-round ratios (round N's
Scimitar req/s over round N's scim2-server req/s; again the lower middle for an even count); a
"Per-round ratios" table lists each round's ratio with the min and max. Errors are checked in
every round. The group runs and the two-node run have no round in their names.

The two-node run adds
`two_node.scimitar-pg.wrk` and `two_node.scimitar-pg-b.wrk` (nodes A and B), their
`.quantiles` (wrk's latency distribution, every 0.1%, to merge the two), `two_node.cpu` (both
nodes together), `two_node.nodes.cpu` ("node_a_seconds node_b_seconds"), `staleness.json`
(bench/staleness.py under that load) and `staleness_idle.json` (the same probe with no load).
The plain-text tables go to stdout, the Markdown version to MARKDOWN_OUT.
Standard library only.

The exit status is 1 when any run saw a non-2xx response or a socket error (other than the
peer closing connections), or the staleness probe saw a read that ignored Scimitar-Read-After,
a change that never reached the other node, or errors; the tables are written either way.
"""

import json
import os
import re
import sys

# (operation key, description) in table order; every one runs on every server.
COMPARED_OPERATIONS = [
    ("get_user", "GET /Users/{id}"),
    ("filter_users", 'GET /Users?filter=userName eq "…"'),
    ("post_user", "POST /Users"),
    ("patch_user", "PATCH /Users/{id} replace active"),
]
# Scimitar only: one membership change on a small group, then on a huge one, first under the
# same load as the compared operations, then one connection at a time.
GROUP_LOADS = [("concurrent", "same load as above"), ("serial", "1 connection")]
# Scimitar's backends: (server key, name, short name, meta key suffix).
BACKENDS = [
    ("scimitar", "Scimitar-SQLite", "SQLite", ""),
    ("scimitar-pg", "Scimitar-PostgreSQL", "PostgreSQL", "_PG"),
]
PEER = ("peer", "scim2-server")
SERVER_NAMES = {key: name for key, name, _, _ in BACKENDS} | {PEER[0]: PEER[1]}
TWO_NODE = "two_node"
TWO_NODE_SERVERS = [("scimitar-pg", "node A"), ("scimitar-pg-b", "node B")]

# Targets from the performance issue.
GET_RATIO_TARGET = 50.0
POST_RATIO_TARGET = 10.0
GROUP_TOLERANCE = 0.20

LATENCY_UNITS_IN_MS = {"us": 0.001, "ms": 1.0, "s": 1000.0, "m": 60_000.0, "h": 3_600_000.0}


def server_name(operation, server):
    if operation == TWO_NODE:
        return "Scimitar-PostgreSQL " + dict(TWO_NODE_SERVERS).get(server, server)
    return SERVER_NAMES.get(server, server)


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


def cpu_shares(line):
    """Shares of one core from a .cpu line (4 fields, or 5 with the PostgreSQL processes)."""
    fields = [float(field) for field in line.split()]
    server_cpu, wrk_cpu, wall, machine_busy = fields[:4]
    postgres_cpu = fields[4] if len(fields) > 4 else None
    if not wall:
        return {}
    shares = {"server_cpu_share": server_cpu / wall, "wrk_cpu_share": wrk_cpu / wall}
    if postgres_cpu is not None:
        shares["postgres_cpu_share"] = postgres_cpu / wall
    # Whatever else ran meanwhile (other builds on a shared machine): the noise.
    shares["other_cpu_share"] = max(0.0, machine_busy - server_cpu - wrk_cpu - (postgres_cpu or 0.0)) / wall
    shares["wall"] = wall
    return shares


def load_runs(raw_dir):
    """{(operation, server): [run, ...]}, the rounds in round order; each run carries its
    "round" (None for a file named without one: `<operation>.<server>.wrk`)."""
    runs = {}
    for name in sorted(os.listdir(raw_dir)):
        if not name.endswith(".wrk"):
            continue
        stem = name[: -len(".wrk")]
        operation, server = stem.split(".", 1)
        round_number = None
        if match := re.fullmatch(r"(.+)\.r(\d+)", server):
            server, round_number = match.group(1), int(match.group(2))
        with open(os.path.join(raw_dir, name)) as wrk_file:
            run = parse_wrk(wrk_file.read())
        run["round"] = round_number
        cpu_path = os.path.join(raw_dir, f"{stem}.cpu")
        if os.path.exists(cpu_path):
            with open(cpu_path) as cpu_file:
                run.update(cpu_shares(cpu_file.read()))
        quantiles_path = os.path.join(raw_dir, f"{stem}.quantiles")
        if os.path.exists(quantiles_path):
            with open(quantiles_path) as quantiles_file:
                run["quantiles_us"] = [
                    float(line.split()[1]) for line in quantiles_file if line.strip() and not line.startswith("#")
                ]
        runs.setdefault((operation, server), []).append(run)
    for rounds in runs.values():
        rounds.sort(key=lambda run: -1 if run["round"] is None else run["round"])
    return runs


def lower_median(values):
    """The median of a non-empty list; the lower of the two middle values for an even count."""
    ordered = sorted(values)
    return ordered[(len(ordered) - 1) // 2]


def median_round(rounds):
    """The round with the median req/s (the lower middle one for an even count); a round
    without a result counts as the slowest."""
    ordered = sorted(rounds, key=lambda run: (run["rps"] is not None, run["rps"] or 0.0))
    return ordered[(len(ordered) - 1) // 2]


def round_ratios(ours, peer):
    """[(round, Scimitar req/s / scim2-server req/s or None)] over the rounds either side ran,
    pairing same-numbered rounds."""
    ours_by_round = {run["round"]: run for run in ours}
    peer_by_round = {run["round"]: run for run in peer}
    round_numbers = sorted(set(ours_by_round) | set(peer_by_round), key=lambda value: -1 if value is None else value)
    return [
        (round_number, ratio(ours_by_round.get(round_number, {}).get("rps"), peer_by_round.get(round_number, {}).get("rps")))
        for round_number in round_numbers
    ]


def median_ratio(ours, peer):
    """The median of the per-round ratios (None when no round has both sides)."""
    values = [value for _, value in round_ratios(ours, peer) if value is not None]
    return lower_median(values) if values else None


def load_two_node(raw_dir):
    """The two-node run's CPU split and the staleness probe's results (None when not run)."""
    result = {}
    path = os.path.join(raw_dir, f"{TWO_NODE}.cpu")
    if os.path.exists(path):
        with open(path) as cpu_file:
            result["cpu"] = cpu_shares(cpu_file.read())
    path = os.path.join(raw_dir, f"{TWO_NODE}.nodes.cpu")
    if os.path.exists(path) and result.get("cpu", {}).get("wall"):
        with open(path) as nodes_file:
            node_a, node_b = (float(field) for field in nodes_file.read().split())
        result["node_cpu_shares"] = (node_a / result["cpu"]["wall"], node_b / result["cpu"]["wall"])
    for name, key in (("staleness.json", "staleness"), ("staleness_idle.json", "staleness_idle")):
        path = os.path.join(raw_dir, name)
        if os.path.exists(path):
            with open(path) as staleness_file:
                result[key] = json.load(staleness_file)
    return result


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


def percentile(values, fraction):
    """Nearest-rank percentile of a non-empty list."""
    ordered = sorted(values)
    rank = -(-len(ordered) * fraction // 1)  # ceil(n * fraction)
    return ordered[int(min(max(rank, 1), len(ordered))) - 1]


def merged_percentile(runs, fraction):
    """A percentile of several wrk runs' latencies together, in ms: each run's distribution
    (every 0.1%) weighted by its request count. None when a run lacks its distribution."""
    points = []
    for run in runs:
        quantiles = run.get("quantiles_us")
        if not quantiles or not run.get("requests"):
            return None
        weight = run["requests"] / len(quantiles)
        points += [(value, weight) for value in quantiles]
    points.sort()
    total = sum(weight for _, weight in points)
    seen = 0.0
    for value, weight in points:
        seen += weight
        if seen >= fraction * total - 1e-9:
            return value / 1000
    return points[-1][0] / 1000 if points else None


def build_tables(round_runs, meta, two_node):
    """Returns (list of (title, header, rows)), target lines, problem lines. round_runs is
    load_runs' answer: every round of every (operation, server)."""
    # One run per (operation, server) for the tables: the median round (the only one when the
    # operation ran once).
    runs = {key: median_round(rounds) for key, rounds in round_runs.items()}
    # How many rounds the compared operations ran (1 for an old raw directory).
    round_count = max(
        (len(round_runs.get((operation, server), [])) for operation, _ in COMPARED_OPERATIONS
         for server in [key for key, _, _, _ in BACKENDS] + [PEER[0]]),
        default=1,
    ) or 1

    problems = []
    for (operation, server), rounds in sorted(round_runs.items()):
        for run in rounds:
            where = "" if run["round"] is None or len(rounds) == 1 and round_count == 1 else f", round {run['round']}"
            for problem in run_problems(run, server):
                problems.append(f"{operation} on {server_name(operation, server)}{where}: {problem}")

    # A compared operation's round that one server lacks (wrk failed, or a run cut short) leaves
    # that round without a ratio; say so.
    for operation, _ in COMPARED_OPERATIONS:
        servers = [key for key, _, _, _ in BACKENDS] + [PEER[0]]
        round_numbers = {run["round"] for server in servers for run in round_runs.get((operation, server), [])}
        for server in servers:
            if (operation, server) not in round_runs:
                continue
            missing = round_numbers - {run["round"] for run in round_runs[(operation, server)]}
            for round_number in sorted(missing, key=lambda value: -1 if value is None else value):
                problems.append(f"{operation} on {server_name(operation, server)}, round {round_number}: no result")

    def any_problems(operation, server):
        return any(run_problems(run, server) for run in round_runs.get((operation, server), []))

    def flagged(operation, server, text):
        # Flagged when any round had errors: the ratio rests on every round.
        return text + (" ⚠" if any_problems(operation, server) else "")

    def compared_ratio(operation, key):
        return median_ratio(round_runs.get((operation, key), []), round_runs.get((operation, PEER[0]), []))

    # The backends this run measured (an old raw directory holds only "scimitar").
    backends = [backend for backend in BACKENDS if any(server == backend[0] for _, server in runs)]
    if not backends:
        backends = BACKENDS[:1]

    comparison_header = ["operation"]
    for _, name, _, _ in backends:
        comparison_header += [f"{name} req/s", "p50", "p99"]
    comparison_header += ["scim2-server req/s", "p50", "p99"]
    comparison_header += [f"ratio {short}" for _, _, short, _ in backends]
    comparison_rows = []
    for operation, description in COMPARED_OPERATIONS:
        peer = runs.get((operation, PEER[0]), {})
        row = [description]
        for key, _, _, _ in backends:
            ours = runs.get((operation, key), {})
            row += [flagged(operation, key, number(ours.get("rps"))), ms(ours.get("p50")), ms(ours.get("p99"))]
        row += [flagged(operation, PEER[0], number(peer.get("rps"))), ms(peer.get("p50")), ms(peer.get("p99"))]
        for key, _, _, _ in backends:
            speedup = compared_ratio(operation, key)
            row.append("–" if speedup is None else f"{speedup:,.1f}×")
        comparison_rows.append(row)

    # Each round's ratio, so the spread behind the median shows.
    round_ratio_rows = []
    for operation, description in COMPARED_OPERATIONS:
        for key, _, short, _ in backends:
            pairs = round_ratios(round_runs.get((operation, key), []), round_runs.get((operation, PEER[0]), []))
            values = [value for _, value in pairs if value is not None]
            if not pairs:
                continue
            round_ratio_rows.append([
                description,
                short,
                " · ".join("–" if value is None else f"{value:,.1f}×" for _, value in pairs),
                "–" if not values else f"{lower_median(values):,.1f}×",
                "–" if not values else f"{min(values):,.1f}×",
                "–" if not values else f"{max(values):,.1f}×",
            ])

    small_size = int(meta.get("SMALL_GROUP_SIZE", "10"))
    big_size = int(meta.get("BIG_GROUP_SIZE", "100000"))
    signed = lambda value: "–" if value is None else f"{value * 100:+.1f}%"  # noqa: E731

    def change(big_value, small_value):
        if big_value is None or not small_value:
            return None
        return big_value / small_value - 1

    group_rows = []
    group_changes = {}  # (server, load) -> (req/s change, p50 change, p99 change)
    for key, _, short, _ in backends:
        for load, load_label in GROUP_LOADS:
            small = runs.get((f"group_small_{load}", key), {})
            big = runs.get((f"group_big_{load}", key), {})
            if not small and not big:
                continue
            for size, run, operation in ((small_size, small, f"group_small_{load}"), (big_size, big, f"group_big_{load}")):
                group_rows.append([
                    short,
                    load_label,
                    f"{size:,} members",
                    flagged(operation, key, number(run.get("rps"), 1)),
                    ms(run.get("p50")),
                    ms(run.get("p99")),
                ])
            changes = tuple(change(big.get(field), small.get(field)) for field in ("rps", "p50", "p99"))
            group_changes[(key, load)] = changes
            group_rows.append([short, load_label, "difference (big vs small)"] + [signed(value) for value in changes])

    # Two nodes on one PostgreSQL database, one wrk each at the same time.
    two_node_rows = []
    node_runs = [(runs[(TWO_NODE, key)], label) for key, label in TWO_NODE_SERVERS if (TWO_NODE, key) in runs]
    for (run, label), (key, _) in zip(node_runs, TWO_NODE_SERVERS):
        two_node_rows.append([
            label,
            flagged(TWO_NODE, key, number(run.get("rps"))),
            ms(run.get("p50")),
            ms(run.get("p99")),
            f"{run['requests']:,}",
            str(run["non_2xx"]),
        ])
    if len(node_runs) == 2:
        both = [run for run, _ in node_runs]
        total_rps = None if any(run.get("rps") is None for run in both) else sum(run["rps"] for run in both)
        two_node_rows.append([
            "both nodes",
            number(total_rps),
            ms(merged_percentile(both, 0.50)),
            ms(merged_percentile(both, 0.99)),
            f"{sum(run['requests'] for run in both):,}",
            str(sum(run["non_2xx"] for run in both)),
        ])

    staleness_rows = []

    def stats_row(load, label, values, note):
        if not values:
            return [load, label, "0", "–", "–", "–", note]
        return [load, label, f"{len(values):,}", ms(percentile(values, 0.5)), ms(percentile(values, 0.99)), ms(max(values)), note]

    for key, load in (("staleness", "two-node mixed load"), ("staleness_idle", "no load")):
        staleness = two_node.get(key)
        if not staleness:
            if meta.get("TWO_NODE"):
                problems.append(f"staleness probe ({load}): no results")
            continue
        requested = staleness.get("probes_requested", 0)
        follow, tokened = staleness["follow"], staleness["token"]
        stale_reads = follow.get("stale_reads") or []
        follow_note = (
            f"median {percentile(stale_reads, 0.5):,} stale reads on B before the change showed"
            if stale_reads else ""
        )
        if follow.get("lost"):
            follow_note += f"; ⚠ {follow['lost']} never shown within 5 s"
        token_note = "every read showed the change" if not tokened.get("violations") else (
            f"⚠ {tokened['violations']} reads did not show the change"
        )
        for label, values in (("without a token", follow["delays_ms"]), ("with the token", tokened["delays_ms"])):
            if len(values) < requested:
                # Not an error: the time ran out first. Say so beside the numbers.
                note = f"{len(values)} of the {requested} probes {label} fitted in the time"
                if label == "without a token":
                    follow_note = "; ".join(filter(None, [follow_note, note]))
                else:
                    token_note = "; ".join(filter(None, [token_note, note]))
        staleness_rows.append(stats_row(load, "GET on node B, no token (B follows the log)", follow["delays_ms"], follow_note))
        staleness_rows.append(stats_row(load, "GET on node B with Scimitar-Read-After", tokened["delays_ms"], token_note))
        staleness_rows.append(stats_row(load, "(the PATCH on node A itself)", staleness.get("write_ms") or [], "from sending to A's answer"))
        if follow.get("lost"):
            problems.append(f"staleness probe ({load}): {follow['lost']} changes made on node A never showed on node B within 5 s")
        if tokened.get("violations"):
            problems.append(f"staleness probe ({load}): {tokened['violations']} reads with Scimitar-Read-After on node B did not show the change")
        if staleness.get("error_count"):
            problems.append(
                f"staleness probe ({load}): {staleness['error_count']} errors ({'; '.join(staleness.get('errors', [])[:3])})"
            )
        if not staleness.get("change_token_header"):
            problems.append(f"staleness probe ({load}): node A's answers carry no Scimitar-Change-Token header")

    cpu_rows = []
    group_operations = [
        (f"group_{group}_{load}", f"group PATCH add/remove, {size:,} members, {load_label}")
        for load, load_label in GROUP_LOADS
        for group, size in (("small", small_size), ("big", big_size))
    ]
    for operation, description in COMPARED_OPERATIONS + group_operations:
        for server in [key for key, _, _, _ in backends] + [PEER[0]]:
            run = runs.get((operation, server))
            if run is None:
                continue
            cpu_rows.append([
                description,
                server_name(operation, server),
                percent(run.get("server_cpu_share")),
                percent(run.get("postgres_cpu_share")),
                percent(run.get("wrk_cpu_share")),
                percent(run.get("other_cpu_share")),
                f"{run['requests']:,}",
                str(run["non_2xx"]),
            ])
    if two_node.get("cpu") and len(node_runs) == 2:
        cpu = two_node["cpu"]
        node_shares = two_node.get("node_cpu_shares")
        cpu_rows.append([
            "two nodes, mixed load (both wrk)",
            "Scimitar-PostgreSQL A + B"
            + (f" ({percent(node_shares[0])} + {percent(node_shares[1])})" if node_shares else ""),
            percent(cpu.get("server_cpu_share")),
            percent(cpu.get("postgres_cpu_share")),
            percent(cpu.get("wrk_cpu_share")),
            percent(cpu.get("other_cpu_share")),
            f"{sum(run['requests'] for run, _ in node_runs):,}",
            str(sum(run["non_2xx"] for run, _ in node_runs)),
        ])

    def clean(operation, key):
        if (operation, key) not in round_runs:
            return False
        return not any_problems(operation, key)

    def ratio_text(value):
        return "–" if value is None else f"{value:,.1f}×"

    # The target lines as before, for SQLite, with PostgreSQL's numbers beside them.
    get_parts, post_parts = [], []
    for key, _, short, suffix in BACKENDS:
        if key not in [backend[0] for backend in backends] and key != "scimitar":
            continue
        get_ratio = compared_ratio("get_user", key)
        post_ratio = compared_ratio("post_user", key)
        durable = meta.get(f"DURABILITY_VERDICT{suffix}")
        get_met = None if get_ratio is None else get_ratio >= GET_RATIO_TARGET
        post_met = None if post_ratio is None else (
            post_ratio >= POST_RATIO_TARGET and durable == "passed" and clean("post_user", key)
        )
        lead = "" if key == "scimitar" else f"{short}: "
        get_parts.append(f"{lead}{ratio_text(get_ratio)} → {verdict(get_met)}")
        post_parts.append(f"{lead}{ratio_text(post_ratio)}, durability check {durable or 'not run'} → {verdict(post_met)}")
    # With several rounds, say what the ratio is (an old raw directory reads as before).
    ratio_note = f" (ratio = median of {round_count} per-round ratios)" if round_count > 1 else ""
    targets = [
        f"GET /Users/{{id}} ≥ {GET_RATIO_TARGET:g}× scim2-server{ratio_note}: " + "; ".join(get_parts),
        f"POST /Users ≥ {POST_RATIO_TARGET:g}× scim2-server with every 2xx durably committed{ratio_note}: "
        + "; ".join(post_parts),
    ]
    for load, load_label in GROUP_LOADS:
        parts = []
        for key, _, short, _ in BACKENDS:
            if (key, load) not in group_changes:
                continue
            rps_change, p50_change, _ = group_changes[(key, load)]
            group_met = None
            if rps_change is not None and p50_change is not None:
                group_met = rps_change >= -GROUP_TOLERANCE and p50_change <= GROUP_TOLERANCE
            errors = [
                problem
                for operation in (f"group_small_{load}", f"group_big_{load}")
                if (operation, key) in runs
                for problem in run_problems(runs[(operation, key)], key)
            ]
            lead = "" if key == "scimitar" else f"{short}: "
            parts.append(
                f"{lead}req/s {signed(rps_change)}, p50 {signed(p50_change)} → {verdict(group_met)}"
                + (f" (but the runs had errors: {'; '.join(errors)})" if errors else "")
            )
        if parts:
            targets.append(
                f"Membership change on the {big_size:,}-member group within {GROUP_TOLERANCE:.0%} of the "
                f"{small_size:,}-member group (req/s and p50), {load_label}: " + "; ".join(parts)
            )

    compared_names = " and ".join(name for _, name, _, _ in backends)
    rounds_note = (
        f", {round_count} interleaved rounds; req/s, p50 and p99 from each one's median round, "
        "ratio = median of the per-round ratios"
        if round_count > 1 else ""
    )
    tables = [
        (
            f"{compared_names} vs scim2-server (same wrk load on each, one server at a time{rounds_note})",
            comparison_header,
            comparison_rows,
        ),
        (
            "Per-round ratios (Scimitar req/s over scim2-server req/s in the same round, rounds in order)",
            ["operation", "backend", "per round", "median", "min", "max"],
            round_ratio_rows if round_count > 1 else [],
        ),
        (
            "Scimitar: one membership change on a small vs a huge group",
            ["backend", "load", "group", "req/s", "p50", "p99"],
            group_rows,
        ),
        (
            "Two Scimitar nodes on one PostgreSQL database, mixed load on both at once",
            ["node", "req/s", "p50", "p99", "requests", "non-2xx"],
            two_node_rows,
        ),
        (
            "Cross-node staleness (a change on node A, read on node B; "
            "delay from A's answer to B's first answer showing it)",
            ["load", "read", "probes", "p50", "p99", "max", "notes"],
            staleness_rows,
        ),
        (
            "CPU split during each run (share of one core; the machine has "
            f"{meta.get('NPROC', '?')}; PostgreSQL = every postgres process on this machine"
            + ("; compared operations: the median round" if round_count > 1 else "") + ")",
            ["operation", "server", "server CPU", "PostgreSQL CPU", "wrk CPU", "other processes CPU", "requests", "non-2xx"],
            cpu_rows,
        ),
    ]
    if not any(row[3] != "–" for row in cpu_rows):
        # No PostgreSQL-backed run: leave its column out.
        title, header, rows = tables[-1]
        tables[-1] = (title.replace("; PostgreSQL = every postgres process on this machine", ""),
                      header[:3] + header[4:], [row[:3] + row[4:] for row in rows])
    # Tables with nothing in them (a run without groups, or without PostgreSQL) are left out.
    return [table for table in tables if table[2]], targets, problems


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
        ("ROUNDS", "rounds of the compared operations"),
        ("BACKENDS", "Scimitar's backends"),
        ("POSTGRES", "PostgreSQL"),
        ("SEEDED_USERS", "users seeded on every server"),
        ("SEED_SECONDS_SCIMITAR", "seeding time, Scimitar-SQLite (s)"),
        ("SEED_SECONDS_SCIMITAR_PG", "seeding time, Scimitar-PostgreSQL (s)"),
        ("SEED_SECONDS_PEER", "seeding time, scim2-server (s)"),
        ("TWO_NODE", "two-node run"),
        ("GROUP_SETUP_SECONDS", "building the groups, scimitar (s)"),
        ("GROUP_SETUP_SECONDS_SCIMITAR", "building the groups, Scimitar-SQLite (s)"),
        ("GROUP_SETUP_SECONDS_SCIMITAR_PG", "building the groups, Scimitar-PostgreSQL (s)"),
        ("GROUP_METHOD", "group benchmark"),
        ("GROUP_SIZES_AFTER", "group sizes at the end of each group run (reset to the exact size before the next)"),
        ("GROUP_SIZES_AFTER_SCIMITAR", "group sizes at the end of each group run, Scimitar-SQLite (reset to the exact size before the next)"),
        ("GROUP_SIZES_AFTER_SCIMITAR_PG", "group sizes at the end of each group run, Scimitar-PostgreSQL"),
        ("TOTAL_SECONDS", "whole command (s)"),
        ("LOAD_AFTER", "load average after the runs"),
        ("DURABILITY", "durability check, Scimitar-SQLite"),
        ("FSYNC", "fsync check, Scimitar-SQLite"),
        ("DURABILITY_PG", "durability check, Scimitar-PostgreSQL"),
        ("FSYNC_PG", "fsync check, Scimitar-PostgreSQL"),
    ]
    return [f"- {label}: {meta[key]}" for key, label in keys if meta.get(key)]


def main(argv):
    if len(argv) != 3:
        raise SystemExit(__doc__)
    raw_dir, markdown_path = argv[1], argv[2]
    runs, meta = load_runs(raw_dir), load_meta(raw_dir)
    tables, targets, problems = build_tables(runs, meta, load_two_node(raw_dir))

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
    markdown += [f"- ⚠ {problem}" for problem in problems] if problems else ["None: every run had only 2xx responses and no socket errors" + (", and the staleness probe saw no stale read with a token and no lost change." if meta.get("TWO_NODE") else ".")]
    markdown.append("")
    with open(markdown_path, "w") as markdown_file:
        markdown_file.write("\n".join(markdown))
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))

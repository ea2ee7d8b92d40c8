#!/usr/bin/env python3
"""Pages through a whole audit trail with GET /api/2.0/audit/events (1,000 events a page, the
largest), on one kept-alive connection, and prints the rate of each tenth of the trail, so a
rate that falls as the cursor moves on shows. Standard library only; the token comes from
BENCH_TOKEN.

    audit_pages.py ORIGIN
"""

import http.client
import json
import os
import sys
import time
import urllib.parse


def main():
    origin = urllib.parse.urlsplit(sys.argv[1])
    connection = http.client.HTTPConnection(origin.hostname, origin.port, timeout=120)
    headers = {"Authorization": f"Bearer {os.environ['BENCH_TOKEN']}"}
    pages = []  # (events on the page, seconds)
    token = None
    while True:
        path = "/api/2.0/audit/events?limit=1000"
        if token:
            path += "&page_token=" + urllib.parse.quote(token)
        started = time.perf_counter()
        connection.request("GET", path, headers=headers)
        reply = connection.getresponse()
        body = reply.read()
        elapsed = time.perf_counter() - started
        if reply.status != 200:
            sys.exit(f"GET {path}: {reply.status} {body[:300]!r}")
        page = json.loads(body)
        pages.append((len(page.get("events", [])), elapsed))
        token = page.get("next_page_token")
        if not token:
            break
    total = sum(count for count, _ in pages)
    seconds = sum(elapsed for _, elapsed in pages)
    print(f"audit events paged: {total:,} in {seconds:.1f} s, {total / seconds:,.0f} events/s "
          f"over {len(pages):,} pages")
    # Ten parts of (nearly) equal page counts; pages left over by the division go to the
    # last part, so a short last page never stands alone as an eleventh "tenth".
    parts = min(10, len(pages))
    bounds = [len(pages) * part // parts for part in range(parts + 1)]
    rates = []
    for start, end in zip(bounds, bounds[1:]):
        chunk = pages[start:end]
        count = sum(c for c, _ in chunk)
        rates.append(count / sum(e for _, e in chunk))
    print("events/s by tenth of the trail: " + ", ".join(f"{rate:,.0f}" for rate in rates))
    print(f"last tenth / first tenth: {rates[-1] / rates[0]:.2f}")


if __name__ == "__main__":
    main()

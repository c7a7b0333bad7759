"""Markdown table of benchmarks/results/peers.json (for docs/peers.md).

    /usr/bin/python3 benchmarks/peers/table.py [benchmarks/results/peers.json]
"""

import json
import sys

path = sys.argv[1] if len(sys.argv) > 1 else "benchmarks/results/peers.json"
report = json.load(open(path))
print(f"{report['date']}, {report['machine']['cpu']}, {report['machine']['cores']} cores; "
      f"versions: " + ", ".join(f"{k} {v}" for k, v in report["versions"].items()))
print()
print("| n | m | d | implementation | threads | status | s/step | pair-updates/s | peak RSS (MB) | time / mfsim's | max rel. error of v |")
print("|---:|---:|---:|---|---:|---|---:|---:|---:|---:|---:|")


def fmt(value, spec):
    return "" if value is None else format(value, spec)


for r in sorted(report["rows"], key=lambda r: (r["d"], r["n"], r["m"], r["threads"], r["impl"] != "mfsim", r["impl"])):
    cells = [r["n"], r["m"], r["d"], r["impl"], r["threads"], r["status"], fmt(r.get("seconds"), ".4g"),
             fmt(r.get("pair_updates_per_s"), ".3g"), fmt(r.get("peak_rss_bytes", 0) / 1e6, ".0f"),
             fmt(r.get("time_over_mfsim"), ".2f"), fmt(r.get("relative_error"), ".1e")]
    print("| " + " | ".join(str(c) for c in cells) + " |")

"""Markdown table of benchmarks/results/peers.json or peers_resnet.json (for docs/peers.md).

    /usr/bin/python3 benchmarks/peers/table.py [benchmarks/results/peers.json]
"""

import json
import sys

path = sys.argv[1] if len(sys.argv) > 1 else "benchmarks/results/peers.json"
report = json.load(open(path))
resnet = report.get("model") == "resnet"
load = report["machine"].get("load_average_at_end")
print(f"{report['date']}, {report['machine']['cpu']}, {report['machine']['cores']} cores"
      + (f" (load average at the end: {load[0]:.2f}, {load[1]:.2f}, {load[2]:.2f})" if load else "")
      + f"; mfsim builds: one thread {report['builds']['mfsim_1']}, two: {report['builds']['mfsim_2']}; "
      f"{report['rounds']} round(s); versions: " + ", ".join(f"{k} {v}" for k, v in report["versions"].items()))
print()
size = ["n", "m", "d"] + (["L", "M", "K"] if resnet else [])
print("| " + " | ".join(size) + " | implementation | threads | status | s/step | pair-updates/s | peak RSS (MB) "
      "| time / mfsim's | max rel. error of v |")
print("|" + "---:|" * len(size) + "---|---:|---|---:|---:|---:|---:|---:|")


def fmt(value, spec):
    return "" if value is None else format(value, spec)


keys = ["n", "m", "d"] + (["depth", "width", "head_width"] if resnet else [])
for r in sorted(report["rows"], key=lambda r: (r["d"], r["n"], r["m"], r["threads"], r["impl"] != "mfsim", r["impl"])):
    cells = [r[k] for k in keys] + [
        r["impl"], r["threads"], r["status"], fmt(r.get("seconds"), ".4g"), fmt(r.get("pair_updates_per_s"), ".3g"),
        fmt(r.get("peak_rss_bytes", 0) / 1e6, ".0f"), fmt(r.get("time_over_mfsim"), ".2f"),
        fmt(r.get("relative_error"), ".1e")]
    print("| " + " | ".join(str(c) for c in cells) + " |")

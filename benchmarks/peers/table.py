"""Markdown tables of benchmarks/results/peers.json or peers_resnet.json (for docs/peers.md).

    /usr/bin/python3 benchmarks/peers/table.py [--compact] [benchmarks/results/peers.json]

--compact: only s/step against m at n = 1000, d = 16, one row per implementation and thread count
(a short table for a summary).
"""

import json
import sys

args = [a for a in sys.argv[1:] if a != "--compact"]
path = args[0] if args else "benchmarks/results/peers.json"
report = json.load(open(path))


def compact():
    rows = [r for r in report["rows"] if r["n"] == 1000 and r["d"] == 16]
    ms = sorted({r["m"] for r in rows})
    print("| implementation | threads | " + " | ".join(f"m = {m:.0e}".replace("e+0", "e") for m in ms) + " |")
    print("|---|---:|" + "---:|" * len(ms))
    for impl, threads in sorted({(r["impl"], r["threads"]) for r in rows}, key=lambda k: (k[1], k[0] != "mfsim", k[0])):
        cells = []
        for m in ms:
            r = next((r for r in rows if (r["impl"], r["threads"], r["m"]) == (impl, threads, m)), None)
            cells.append("" if r is None else f"{r['seconds']:.3g}" if r["status"] == "ok" else r["status"])
        print(f"| {impl} | {threads} | " + " | ".join(cells) + " |")


if "--compact" in sys.argv[1:]:
    compact()
    sys.exit(0)
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

# mfsim against the fastest verified peer at each size, and the largest m each reaches in the cap.
print()
print("| n | m | d | threads | fastest peer | its s/step | mfsim's s/step | mfsim's time / fastest peer's |")
print("|---:|---:|---:|---:|---|---:|---:|---:|")
ok = [r for r in report["rows"] if r["status"] == "ok"]
for r in sorted((r for r in ok if r["impl"] == "mfsim"), key=lambda r: (r["d"], r["n"], r["m"], r["threads"])):
    peers = [q for q in ok if q["impl"] != "mfsim" and all(q[k] == r[k] for k in ("n", "m", "d", "threads"))]
    if peers:
        best = min(peers, key=lambda q: q["seconds"])
        print(f"| {r['n']} | {r['m']} | {r['d']} | {r['threads']} | {best['impl']} | {best['seconds']:.4g} | "
              f"{r['seconds']:.4g} | {r['seconds'] / best['seconds']:.2f} |")
print()
cap = report["machine"]["memory_cap_bytes"] / 2**30
print(f"Largest m run to the end within the {cap:.0f} GiB address-space cap (the grid's m), per n, d, threads:")
print()
for key in sorted({(r["n"], r["d"], r["threads"]) for r in report["rows"]}):
    reached = {}
    for r in ok:
        if (r["n"], r["d"], r["threads"]) == key:
            reached[r["impl"]] = max(reached.get(r["impl"], 0), r["m"])
    first_fail = {}
    for r in report["rows"]:
        if (r["n"], r["d"], r["threads"]) == key and r["status"] not in ("ok", "skipped"):
            first_fail.setdefault(r["impl"], (r["m"], r["status"]))
    names = sorted(set(reached) | set(first_fail), key=lambda s: (s != "mfsim", s))
    print(f"- n = {key[0]}, d = {key[1]}, {key[2]} thread(s): " + "; ".join(
        f"{q} {reached.get(q, '—')}" + (f" ({first_fail[q][1]} at {first_fail[q][0]})" if q in first_fail else "")
        for q in names))

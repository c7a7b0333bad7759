"""Markdown tables of a dated results file of benchmarks/run_peers.py, and the tables of docs/peers.md.

    /usr/bin/python3 benchmarks/peers/table.py [--compact] RESULTS.json
    /usr/bin/python3 benchmarks/peers/table.py --doc docs/peers.md [--check]

--compact: only s/step against m at n = 1000, d = 16, one row per implementation and thread count.
--doc: rewrites every block of the document that starts with a line
`<!-- peers-table: benchmarks/results/<date>-peers-<model>.json -->` and ends with
`<!-- end peers-table -->` with the tables of that file (paths relative to the repository root), so
that the document's figures are the results file's; --check changes nothing and exits 1 when a
block differs from what the file gives (the ctest check doc.peers_tables).
"""

import json
import re
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent.parent
# The docs name versions, not commits: the results file keeps the commit the run was built from.
COMMIT = re.compile(r" \(commit [0-9a-f]+\)")
BLOCK = re.compile(r"(<!-- peers-table: (\S+) -->\n)(.*?)(<!-- end peers-table -->)", re.S)


def fmt(value, spec):
    return "" if value is None else format(value, spec)


def compact(report):
    rows = [r for r in report["rows"] if r["n"] == 1000 and r["d"] == 16]
    ms = sorted({r["m"] for r in rows})
    out = ["| implementation | threads | " + " | ".join(f"m = {m:.0e}".replace("e+0", "e") for m in ms) + " |",
           "|---|---:|" + "---:|" * len(ms)]
    for impl, threads in sorted({(r["impl"], r["threads"]) for r in rows}, key=lambda k: (k[1], k[0] != "mfsim", k[0])):
        cells = []
        for m in ms:
            r = next((r for r in rows if (r["impl"], r["threads"], r["m"]) == (impl, threads, m)), None)
            cells.append("" if r is None else f"{r['seconds']:.3g}" if r["status"] == "ok" else r["status"])
        out.append(f"| {impl} | {threads} | " + " | ".join(cells) + " |")
    return "\n".join(out) + "\n"


def tables(report):
    """The run's machine and load, every row, mfsim against the fastest peer, the largest m reached."""
    resnet = report.get("model") == "resnet"
    machine = report["machine"]
    loads = [f"{when} {', '.join(f'{x:.2f}' for x in machine[key])}"
             for when, key in (("at the start", "load_average_at_start"), ("at the end", "load_average_at_end"))
             if machine.get(key)]
    out = [f"{report['date']}, {machine['cpu']}, {machine['cores']} cores"
           + (f" (load average {'; '.join(loads)})" if loads else "")
           + f"; mfsim builds: one thread {report['builds']['mfsim_1']}, two: {report['builds']['mfsim_2']}; "
           f"{report['rounds']} round(s); versions: "
           + ", ".join(f"{k} {COMMIT.sub('', str(v))}" for k, v in report["versions"].items())]
    if report.get("note"):
        out += ["", report["note"]]
    out.append("")
    size = ["n", "m", "d"] + (["L", "M", "K"] if resnet else [])
    out.append("| " + " | ".join(size) + " | implementation | threads | status | s/step | pair-updates/s "
               "| peak RSS (MB) | time / mfsim's | max rel. error of v |")
    out.append("|" + "---:|" * len(size) + "---|---:|---|---:|---:|---:|---:|---:|")
    keys = ["n", "m", "d"] + (["depth", "width", "head_width"] if resnet else [])
    for r in sorted(report["rows"],
                    key=lambda r: (r["d"], r["n"], r["m"], r["threads"], r["impl"] != "mfsim", r["impl"])):
        cells = [r[k] for k in keys] + [
            r["impl"], r["threads"], r["status"], fmt(r.get("seconds"), ".4g"), fmt(r.get("pair_updates_per_s"), ".3g"),
            fmt(r.get("peak_rss_bytes", 0) / 1e6, ".0f"), fmt(r.get("time_over_mfsim"), ".2f"),
            fmt(r.get("relative_error"), ".1e")]
        out.append("| " + " | ".join(str(c) for c in cells) + " |")

    # mfsim against the fastest verified peer at each size, and the largest m each reaches in the cap.
    out += ["", "| n | m | d | threads | fastest peer | its s/step | mfsim's s/step | mfsim's time / fastest peer's |",
            "|---:|---:|---:|---:|---|---:|---:|---:|"]
    ok = [r for r in report["rows"] if r["status"] == "ok"]
    for r in sorted((r for r in ok if r["impl"] == "mfsim"), key=lambda r: (r["d"], r["n"], r["m"], r["threads"])):
        peers = [q for q in ok if q["impl"] != "mfsim" and all(q[k] == r[k] for k in ("n", "m", "d", "threads"))]
        if peers:
            best = min(peers, key=lambda q: q["seconds"])
            out.append(f"| {r['n']} | {r['m']} | {r['d']} | {r['threads']} | {best['impl']} | {best['seconds']:.4g} | "
                       f"{r['seconds']:.4g} | {r['seconds'] / best['seconds']:.2f} |")
    cap = machine["memory_cap_bytes"] / 2**30
    out += ["", f"Largest m run to the end within the {cap:.0f} GiB address-space cap (the grid's m), "
            "per n, d, threads:", ""]
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
        out.append(f"- n = {key[0]}, d = {key[1]}, {key[2]} thread(s): " + "; ".join(
            f"{q} {reached.get(q, '—')}" + (f" ({first_fail[q][1]} at {first_fail[q][0]})" if q in first_fail else "")
            for q in names))
    return "\n".join(out) + "\n"


def render_doc(text):
    """The document with every peers-table block filled from its results file."""
    return BLOCK.sub(lambda m: m.group(1) + "\n" + tables(json.loads((ROOT / m.group(2)).read_text())) + "\n"
                     + m.group(4), text)


def main(argv):
    if "--doc" in argv:
        path = Path(argv[argv.index("--doc") + 1])
        text = path.read_text()
        if not BLOCK.search(text):
            print(f"table.py: no peers-table block in {path}", file=sys.stderr)
            return 1
        rendered = render_doc(text)
        if "--check" in argv:
            if rendered != text:
                print(f"table.py: {path} differs from its results files: run "
                      f"/usr/bin/python3 benchmarks/peers/table.py --doc {path}", file=sys.stderr)
                return 1
            return 0
        path.write_text(rendered)
        return 0
    args = [a for a in argv if a != "--compact"]
    if len(args) != 1:
        print(__doc__, file=sys.stderr)
        return 2
    report = json.loads(Path(args[0]).read_text())
    sys.stdout.write(compact(report) if "--compact" in argv else tables(report))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

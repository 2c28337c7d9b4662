"""Benchmark reports: the JSON file (merged across partial runs), speed-up ratios and the Markdown table.

A report is ``{"suite", "created", "machine", "versions", "settings", "checks", "results", "ratios"}``;
a result is keyed by ``(circuit, backend, batch, mode)``, so re-running part of a suite into the same
file replaces those rows and keeps the others (on the same machine).
"""

from __future__ import annotations

import datetime
import json
import logging
from pathlib import Path

from hqnn.bench.backends import BACKENDS, PEERS

__all__ = ["RATIOS", "merge_reports", "new_report", "peer_table", "read_report", "speedups", "markdown_table",
           "write_report"]

log = logging.getLogger(__name__)

# (ours, theirs): speed-up = theirs' ms / ours' ms (above 1: ours is faster)
RATIOS = (
    ("hqnn", "pennylane-default"),
    ("hqnn", "pennylane-lightning"),
    ("hqnn", "pergate-torch"),
    ("hqnn-torchlayer", "pennylane-default"),
    ("hqnn", "pennylane-mixed"),
)


def _row_key(r: dict) -> tuple:
    return (r["circuit"], r.get("batch"), r["mode"])


def new_report(suite: str, machine: dict, versions: dict, settings: dict, checks: list, results: list) -> dict:
    """A report dict stamped with the current UTC time."""
    created = datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds")
    return {"suite": suite, "created": created, "machine": machine, "versions": versions, "settings": settings,
            "checks": checks, "results": results, "ratios": []}


def read_report(path: str | Path) -> dict | None:
    """The report saved at ``path``, or None when there is none (or it is not valid JSON)."""
    try:
        return json.loads(Path(path).read_text())
    except (OSError, ValueError):
        return None


def merge_reports(old: dict | None, new: dict) -> dict:
    """``new`` plus the rows of ``old`` it does not replace (only when both ran the same suite on the same machine)."""
    same = old is not None and old.get("suite") == new["suite"] and all(
        old.get("machine", {}).get(k) == new["machine"].get(k) for k in ("cpu", "device", "gpu"))
    if not same:
        if old is not None:
            log.info("the existing report is of another suite or machine: starting a new one")
        return new
    assert old is not None  # for mypy: ``same`` implies it

    def merged(kind: str, key) -> list:  # old order, new rows in place of the old ones, then the new rows left
        fresh = {key(r): r for r in new[kind]}
        rows = [fresh.pop(key(r), r) for r in old.get(kind, [])]
        return rows + list(fresh.values())

    out = dict(new)
    out["checks"] = merged("checks", lambda r: (r["circuit"], r["backend"]))
    out["results"] = merged("results", lambda r: (r["circuit"], r["backend"], r.get("batch"), r["mode"]))
    return out


def speedups(results: list[dict]) -> list[dict]:
    """For each (circuit, batch, mode), the ratios of :data:`RATIOS` whose two sides were both timed, and
    ``hqnn_vs_fastest_peer`` with ``fastest_peer``: the quickest timed backend of
    :data:`~hqnn.bench.backends.PEERS` in that row against hqnn."""
    ms = {(*_row_key(r), r["backend"]): r["ms"] for r in results if r.get("ms") is not None}
    out = []
    for row in dict.fromkeys(_row_key(r) for r in results):
        ratios: dict[str, object] = {
            f"{ours}_vs_{theirs}": round(ms[row + (theirs,)] / ms[row + (ours,)], 2)
            for ours, theirs in RATIOS if row + (ours,) in ms and row + (theirs,) in ms}
        timed_peers = [p for p in PEERS if row + (p,) in ms]
        if row + ("hqnn",) in ms and timed_peers:
            fastest = min(timed_peers, key=lambda p: ms[row + (p,)])
            ratios["fastest_peer"] = fastest
            ratios["hqnn_vs_fastest_peer"] = round(ms[row + (fastest,)] / ms[row + ("hqnn",)], 2)
        if ratios:
            out.append({"circuit": row[0], "batch": row[1], "mode": row[2], **ratios})
    return out


def _fmt_ms(record: dict | None) -> str:
    if record is None:
        return ""
    if record.get("ms") is None:
        return "fail" if record.get("status") == "failed" else "skip"
    ms = record["ms"]
    return f"{ms:.3g}" if ms < 100 else f"{ms:.0f}"


def markdown_table(report: dict) -> str:
    """Milliseconds per call for every backend, then the speed-ups, one row per (circuit, batch, mode)."""
    results = report["results"]
    backends = sorted(dict.fromkeys(r["backend"] for r in results),
                      key=lambda b: BACKENDS.index(b) if b in BACKENDS else len(BACKENDS))
    ratios = {_row_key(r): r for r in report.get("ratios", [])}
    ratio_cols = [f"{o}_vs_{t}" for o, t in RATIOS if any(f"{o}_vs_{t}" in r for r in ratios.values())]
    by_key = {(*_row_key(r), r["backend"]): r for r in results}
    head = ["circuit", "batch", "mode"] + [f"{b} ms" for b in backends] + [c.replace("_vs_", " vs ") + " ×"
                                                                          for c in ratio_cols]
    fastest = any("hqnn_vs_fastest_peer" in r for r in ratios.values())
    head += ["hqnn vs fastest peer ×"] if fastest else []
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for row in _ordered_rows(results):
        cells = [row[0], str(row[1]), row[2]] + [_fmt_ms(by_key.get((*row, b))) for b in backends]
        cells += [f"{ratios[row][c]:.3g}" if row in ratios and c in ratios[row] else "" for c in ratio_cols]
        cells += [_fmt_fastest(ratios.get(row, {}))] if fastest else []
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def _ordered_rows(results: list[dict]) -> list[tuple]:
    """The (circuit, batch, mode) keys: circuits in run order, then mode, then batch."""
    circuits = list(dict.fromkeys(r["circuit"] for r in results))
    return sorted(dict.fromkeys(_row_key(r) for r in results), key=lambda k: (circuits.index(k[0]), k[2], k[1] or 0))


def _fmt_fastest(ratio_row: dict) -> str:
    if "hqnn_vs_fastest_peer" not in ratio_row:
        return ""
    return f"{ratio_row['hqnn_vs_fastest_peer']:.3g} ({ratio_row['fastest_peer']})"


def peer_table(report: dict) -> str:
    """Per circuit and mode, hqnn's speed-up over the fastest peer at each batch (that peer's ms / hqnn's ms,
    the peer named), from the report's ratios; empty when no row has hqnn and a peer both timed."""
    ratios = {_row_key(r): r for r in report.get("ratios", []) if "hqnn_vs_fastest_peer" in r}
    if not ratios:
        return ""
    batches = sorted({k[1] for k in ratios})
    lines = ["| circuit | mode | " + " | ".join(f"B={b}" for b in batches) + " |", "|" + "---|" * (2 + len(batches))]
    for circuit, mode in dict.fromkeys((k[0], k[2]) for k in _ordered_rows(report["results"]) if k in ratios):
        cells = [_fmt_fastest(ratios.get((circuit, b, mode), {})) for b in batches]
        lines.append(f"| {circuit} | {mode} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def write_report(path: str | Path, report: dict) -> Path:
    """Write ``report`` as indented JSON (creating the folder), atomically: an interrupted write
    leaves the previous file as it was. Returns the path."""
    from hqnn.train.checkpoint import atomic_write

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    text = json.dumps(report, indent=1) + "\n"
    return atomic_write(path, lambda tmp: tmp.write_text(text))

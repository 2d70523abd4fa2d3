"""The benchmark's report: the targets it is judged by, and its JSON, Markdown and PNG files.

No Django here: everything is read from the report dict that ``benchmarks.benchmarking``
builds, so a committed JSON can be re-rendered with ``render_files``.
"""

import json
from pathlib import Path

#: (id, what, comparison, bound): issue 19's must-holds. Latencies in ms at the largest
#: size, through HTTP (gunicorn) when that series ran, else in-process; a bound
#: ``("embedding", x)`` is the measured p50 of embedding one new text plus x.
TARGETS = [
    ("query_warm_p50", "query, warm cache, p50", "<=", 10.0),
    ("query_warm_p95", "query, warm cache, p95", "<=", 20.0),
    ("query_new_p50", "query, new text, p50", "<=", ("embedding", 10.0)),
    ("query_scale_ratio", "query p50 (in-process) at the largest size ÷ at the smallest", "<=", 1.3),
    ("agreement", "top-20 agreement with the exact weighted ranking", ">=", 0.99),
    ("add_new_p50", "add, new content, p50", "<=", ("embedding", 8.0)),
    ("add_duplicate_p50", "add, duplicate, p50", "<=", 5.0),
    ("bootstrap_p50", "bootstrap limit 50, p50", "<=", 5.0),
    ("locust_mix", "locust mix (50 users, 1 s think): worst endpoint p95, 0 errors", "<=", 100.0),
    ("saturation", "locust without think time: requests/s, 0 errors", ">=", 150.0),
]
OPERATIONS = [
    ("add_new", "add (new content)"),
    ("add_duplicate", "add (duplicate)"),
    ("query_cold", "query (cold cache)"),
    ("query_warm", "query (warm cache)"),
    ("bootstrap", "bootstrap (limit 50)"),
]


def _measured(report: dict) -> dict:
    sizes = report["sizes"]
    largest, smallest = sizes[-1], sizes[0]
    latency = (report.get("http") or {}).get("latency") or largest["latency"]
    values = {
        "query_warm_p50": latency["query_warm"]["p50"],
        "query_warm_p95": latency["query_warm"]["p95"],
        "query_new_p50": latency["query_cold"]["p50"],
        "agreement": largest["agreement"]["mean"],
        "add_new_p50": latency["add_new"]["p50"],
        "add_duplicate_p50": latency["add_duplicate"]["p50"],
        "bootstrap_p50": latency["bootstrap"]["p50"],
        "embedding": (largest.get("embeddingMs") or {}).get("p50"),
    }
    if len(sizes) > 1:
        values["query_scale_ratio"] = round(
            largest["latency"]["query_warm"]["p50"] / smallest["latency"]["query_warm"]["p50"], 2
        )
    locust = report.get("locust")
    if locust:
        mix, saturation = locust["mix"]["total"], locust["saturation"]["total"]
        worst = max((e["p95"] for e in locust["mix"]["endpoints"].values()), default=None)
        values["locust_mix"] = worst if mix and mix["failures"] == 0 else None
        values["locust_mix_errors"] = mix["failures"] if mix else None
        values["saturation"] = saturation["requestsPerSecond"] if saturation else None
        values["saturation_errors"] = saturation["failures"] if saturation else None
    return values


def _bound(bound, measured: dict) -> float | None:
    if isinstance(bound, tuple):
        base, extra = bound
        return None if measured.get(base) is None else round(measured[base] + extra, 2)
    return bound


def evaluate_targets(report: dict) -> list[dict]:
    """Each target with its measured value and whether it is met (``None``: not measured in this run)."""
    measured = _measured(report)
    rows = []
    for target_id, what, comparison, bound in TARGETS:
        value, limit = measured.get(target_id), _bound(bound, measured)
        met = None
        if value is not None and limit is not None:
            met = value <= limit if comparison == "<=" else value >= limit
        if measured.get(f"{target_id}_errors"):
            met = False
        if isinstance(bound, tuple):
            shown = f"{bound[0]} + {bound[1]:g}" + (f" = {limit:g}" if limit is not None else "")
        else:
            shown = f"{bound:g}"
        rows.append({"id": target_id, "target": f"{what} {comparison} {shown}", "measured": value, "met": met})
    return rows


def _fmt(value, unit: str = "") -> str:
    if value is None:
        return "—"
    return f"{value:g}{unit}" if isinstance(value, (int, float)) else str(value)


def _code_note(code: dict | None) -> str:
    if not code or not code.get("commit"):
        return ""
    dirty = " plus uncommitted changes to the service" if code.get("uncommittedChanges") else ""
    return f", code at commit `{code['commit']}`{dirty}"


def markdown(report: dict, plot_name: str | None) -> str:
    machine, corpus = report["machine"], report["corpus"]
    sizes = report["sizes"]
    size_labels = [f"{entry['size']:,}" for entry in sizes]
    lines = [
        f"# Anima benchmark — {corpus['mode']} corpus, {', '.join(size_labels)} memories",
        "",
        f"Run {report['startedAt']} ({report.get('durationSeconds', '?')} s): `{report.get('command') or 'manage.py benchmark'}`"
        + _code_note(report.get("code")),
        "",
        f"**Machine:** {machine['cpuCount']} cores, {machine['cpuModel']}, {machine['memoryGiB']} GiB RAM; "
        f"Python {machine['python']}, Django {machine['django']}, torch {machine['torch']}; "
        f"PostgreSQL {machine['postgresql']} with pgvector {machine['pgvector']} ({machine['database']}). "
        f"Load average (1 min) at the end: {machine.get('loadAverageEnd')} — the machine is shared.",
        "",
        f"**Corpus:** {corpus['vectors']}; contents: {corpus['contents']}; φ: {corpus['phi']}; "
        f"tiers: {', '.join(f'{t} {s:.0%}' for t, s in corpus['tiers'].items())}. "
        f"Loading took {corpus.get('loadSeconds')} s in all.",
        "",
        f"**Client:** {report['client']}. {report['iterations']} measured requests per series after "
        f"warm-up; times in ms, client side.",
        "",
        "## Targets",
        "",
        "| target | measured | met |",
        "| --- | --- | --- |",
    ]
    for row in report.get("targets", []):
        met = {True: "yes", False: "**no**", None: "not measured"}[row["met"]]
        lines.append(f"| {row['target']} | {_fmt(row['measured'])} | {met} |")
    lines += ["", "## Single client, in-process (ms)", ""]
    header = "| operation | " + " | ".join(f"{label}: p50 / p95 / p99" for label in size_labels) + " |"
    lines += [header, "| --- | " + " | ".join("---" for _ in sizes) + " |"]
    for key, label in OPERATIONS:
        cells = []
        for entry in sizes:
            stats = entry["latency"][key]
            cells.append(f"{stats['p50']} / {stats['p95']} / {stats['p99']}")
        lines.append(f"| {label} | " + " | ".join(cells) + " |")
    lines.append(
        "| query service time, warm (`meta.queryTime`) p50 / p95 | "
        + " | ".join(f"{e['queryServiceMs']['query_warm']['p50']} / {e['queryServiceMs']['query_warm']['p95']}" for e in sizes)
        + " |"
    )
    lines.append(
        "| embedding one new text, the model alone (`embed_many`), p50 / p95 | "
        + " | ".join(f"{e['embeddingMs']['p50']} / {e['embeddingMs']['p95']}" if e.get("embeddingMs") else "—" for e in sizes)
        + " |"
    )
    lines += [
        "",
        "| per size | " + " | ".join(size_labels) + " |",
        "| --- | " + " | ".join("---" for _ in sizes) + " |",
        "| live memories when measured | " + " | ".join(f"{s['liveMemories']:,}" for s in sizes) + " |",
        "| load seconds (to this size) | " + " | ".join(_fmt(s["loadSeconds"]) for s in sizes) + " |",
        "| load average when measuring | " + " | ".join(_fmt(s["loadAverage"]) for s in sizes) + " |",
        "| candidate pool sizes asked (size: queries) | "
        + " | ".join(", ".join(f"{k}: {v}" for k, v in s["poolSizes"].items()) or "—" for s in sizes)
        + " |",
        "| top-20 agreement mean (min; queries < 1) | "
        + " | ".join(
            f"{s['agreement']['mean']} ({s['agreement']['min']}; {s['agreement']['queriesBelow1']} of {s['agreement']['queries']})"
            for s in sizes
        )
        + " |",
    ]
    if plot_name:
        lines += ["", f"![query latency versus corpus size]({plot_name})"]
    lines += _profile_lines(sizes[-1])
    http = report.get("http")
    if http:
        lines += [
            "",
            f"## Single client through HTTP ({http['url']}, largest size)",
            "",
            f"{http['client']}.",
            "",
            "| operation | p50 | p95 | p99 |",
            "| --- | --- | --- | --- |",
        ]
        for key, label in OPERATIONS:
            stats = http["latency"][key]
            lines.append(f"| {label} | {stats['p50']} | {stats['p95']} | {stats['p99']} |")
    locust = report.get("locust")
    if locust:
        server = report.get("server", {})
        lines += [
            "",
            "## Load (locust, largest size)",
            "",
            f"Server set: gunicorn {server.get('gunicorn')}, worker `{server.get('worker')}`, "
            f"{server.get('environment')}; locust runs on the same machine.",
            "",
            "| run | endpoint | requests | failures | req/s | p50 | p95 | p99 | max |",
            "| --- | --- | --- | --- | --- | --- | --- | --- | --- |",
        ]
        for run_name, run in (("mix", locust["mix"]), ("saturation", locust["saturation"])):
            label = f"{run_name}: {run['users']} users, think {run['thinkSeconds']:g} s, {run['seconds']} s"
            rows = list(run["endpoints"].items()) + ([("all", run["total"])] if run["total"] else [])
            for endpoint, stats in rows:
                lines.append(
                    f"| {label} | {endpoint} | {stats['requests']} | {stats['failures']} | {stats['requestsPerSecond']} | "
                    f"{_fmt(stats['p50'])} | {_fmt(stats['p95'])} | {_fmt(stats['p99'])} | {_fmt(stats['max'])} |"
                )
        mix, saturation = locust["mix"], locust["saturation"]
        verdict = "passed" if mix["passed"] else "failed: " + "; ".join(mix["problems"])
        lines += [
            "",
            f"Mix budget check (p95 ≤ {mix['budgets']['p95Ms']} ms, errors ≤ {mix['budgets']['maxErrorRate']:.0%}): {verdict}. "
            f"Load average (1 min) before/after the mix: "
            f"{mix['loadAverageBefore']}/{mix['loadAverageAfter']}, saturation: "
            f"{saturation['loadAverageBefore']}/{saturation['loadAverageAfter']}.",
            "",
            "| background work | rows waiting (max) | broker messages (max) | rows waiting at load end | drained after |",
            "| --- | --- | --- | --- | --- |",
            *(_background_row(label, run) for label, run in (("mix", mix), ("saturation", saturation))),
        ]
    lines.append("")
    return "\n".join(lines)


def _profile_lines(entry: dict) -> list[str]:
    """Where the time goes at the largest size (``benchmarks.profiling``), when profiled."""
    profile = entry.get("profile")
    if not profile:
        return []
    lines = [
        "",
        f"## Where the time goes ({entry['size']:,} memories, in-process, per request)",
        "",
        "| operation | wall ms | CPU ms (this process) | CPU ms (PostgreSQL backend) | SQL ms | statements |",
        "| --- | --- | --- | --- | --- | --- |",
    ]
    for key, label in OPERATIONS:
        run = profile.get(key)
        if run:
            lines.append(
                f"| {label} | {run['wallMsPerRequest']} | {run['cpuMsPerRequest']} | "
                f"{_fmt(run['databaseCpuMsPerRequest'])} | {run['sqlMsPerRequest']} | {run['statementsPerRequest']} |"
            )
    for key, label in OPERATIONS:
        run = profile.get(key)
        if not run:
            continue
        lines += ["", f"### {label}: statements ({run['requests']} requests)", "", "| ms | per request | statement |", "| --- | --- | --- |"]
        lines += [f"| {row['msPerRequest']} | {row['perRequest']} | `{row['statement']}` |" for row in run["statements"]]
        lines += ["", f"### {label}: Python stages (cumulative, cProfile)", "", "| ms | calls | function |", "| --- | --- | --- |"]
        lines += [f"| {row['msPerRequest']} | {row['callsPerRequest']} | `{row['function']}` |" for row in run["stages"]]
        lines += ["", f"### {label}: Python hotspots (own time, cProfile)", "", "| ms | calls | function |", "| --- | --- | --- |"]
        lines += [f"| {row['msPerRequest']} | {row['callsPerRequest']} | `{row['function']}` |" for row in run.get("hotspots", [])]
    return lines


def _background_row(label: str, run: dict) -> str:
    """The background work during and after a load run (``BackgroundWatch``); older reports had none."""
    work = run.get("background")
    if not work:
        return f"| {label} | — | — | — | — |"
    drained = "not within the limit" if work["drainedAfterSeconds"] is None else f"{work['drainedAfterSeconds']} s"
    return (
        f"| {label} | {work['pendingMax']} | {work['queueMessagesMax']} | {work['pendingAtLoadEnd']} | {drained} |"
    )


def plot(report: dict, path: Path) -> None:
    """Query latency (warm p50/p95, cold p50) versus corpus size."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import matplotlib.ticker

    sizes = [entry["size"] for entry in report["sizes"]]
    figure, axes = plt.subplots(figsize=(7, 4.2), dpi=120)
    for key, quantile, style, label in (
        ("query_warm", "p50", "o-", "query, warm cache, p50"),
        ("query_warm", "p95", "o--", "query, warm cache, p95"),
        ("query_cold", "p50", "s:", "query, cold cache, p50"),
    ):
        axes.plot(sizes, [entry["latency"][key][quantile] for entry in report["sizes"]], style, label=label)
    axes.axhline(10, color="grey", linewidth=0.8, linestyle="-.", label="target: warm p50 ≤ 10 ms")
    axes.axhline(20, color="grey", linewidth=0.8, linestyle=":", label="target: warm p95 ≤ 20 ms")
    if len(sizes) > 1:
        axes.set_xscale("log")
    axes.set_xticks(sizes, [f"{s:,}" for s in sizes])
    axes.xaxis.set_minor_locator(matplotlib.ticker.NullLocator())
    axes.set_xlabel("memories in the namespace")
    axes.set_ylabel("ms (in-process, single client)")
    axes.set_ylim(bottom=0)
    axes.set_title(f"Anima query latency vs corpus size ({report['corpus']['mode']} corpus)")
    axes.grid(True, alpha=0.3)
    axes.legend(fontsize=8)
    figure.tight_layout()
    figure.savefig(path)
    plt.close(figure)


def render_files(report: dict, out: Path, name: str) -> dict[str, Path]:
    """Write ``<name>.json``, ``<name>.md`` and ``<name>-query-latency.png`` into ``out``."""
    out.mkdir(parents=True, exist_ok=True)
    report["targets"] = evaluate_targets(report)
    paths = {"json": out / f"{name}.json", "markdown": out / f"{name}.md", "plot": out / f"{name}-query-latency.png"}
    plot(report, paths["plot"])
    paths["json"].write_text(json.dumps(report, indent=2, ensure_ascii=False) + "\n")
    paths["markdown"].write_text(markdown(report, paths["plot"].name))
    return paths

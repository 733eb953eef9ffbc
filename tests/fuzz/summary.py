"""The text reports of fuzz runs (mutants, one-op configurations, quantizer cases): counts by outcome, then every
failing seed grouped by cause and message."""

from __future__ import annotations

import re
from collections import Counter, defaultdict

from .opcheck import BIT_EXACT, VERDICTS


def _group_key(*parts: str) -> str:
    """Messages that differ only in numbers, quoted names and offsets fall in one group."""
    text = " ".join(parts)
    text = re.sub(r"'[^']*'", "'…'", text)
    return re.sub(r"\d+", "#", text)[:160]


def _grouped(items: list[tuple[str, str, str]], limit: int = 200) -> list[str]:
    """``items``: (group key, example line, id); one line per group: the example, the count and every id."""
    groups: dict[str, list[tuple[str, str]]] = defaultdict(list)
    for key, line, ident in items:
        groups[key].append((line, ident))
    out = []
    for key in sorted(groups, key=lambda k: (-len(groups[k]), k)):
        members = groups[key]
        ids = ", ".join(i for _, i in members[:limit]) + (
            f", ... ({len(members) - limit} more)" if len(members) > limit else ""
        )
        out.append(f"  {members[0][0]}\n    {len(members)}x: {ids}")
    return out


def mutant_summary(res: list[dict], models: list[str], seconds: float) -> list[str]:
    kinds = Counter(r["kind"] for r in res)
    matched = [r for r in res if r["kind"] == "matched"]
    verdicts = Counter(r.get("oracle", "") or "off" for r in matched)
    failures = [r for r in res if r["kind"] == "failure"]
    seeds = [r["seed"] for r in res]
    lines = [
        f"mutants: {len(res)} (seeds {min(seeds, default=0)}..{max(seeds, default=-1)}) of {', '.join(models)}, "
        f"in {seconds:.0f} s",
        f"  clean error          {kinds['clean_error']:6d}",
        f"  built and matched    {kinds['matched']:6d}  (oracle: "
        + ", ".join(f"{verdicts[v]} {v}" for v in ("matched", "refused", "skipped", "off") if verdicts[v])
        + ")",
        f"  anything else        {kinds['failure']:6d}",
        f"  sanitizer findings   {sum(1 for r in failures if r.get('cause') == 'sanitizer'):6d}",
    ]
    cli = [r for r in res if r.get("cli")]
    if cli:
        bad = sum(1 for r in cli if r.get("cause") == "cli")
        lines.append(f"  CLI checked on {len(cli)} mutants: {len(cli) - bad} agreed (exit 2 and one line, or exit 0)")
    per_model = []
    for m in models:
        c = Counter(r["kind"] for r in res if r["model"] == m)
        per_model.append(f"{m} {c['clean_error']}/{c['matched']}/{c['failure']}")
    lines.append("  by model (clean error/matched/else): " + ", ".join(per_model))
    if failures:
        causes = Counter(r.get("cause", "?") for r in failures)
        lines.append("  failures by cause: " + ", ".join(f"{k} {v}" for k, v in causes.most_common()))
        lines.append("failing seeds, grouped by cause and message (model:seed):")
        items = [
            (_group_key(r.get("cause", ""), r.get("detail", "")), f"[{r.get('cause')}] {r.get('detail', '')}",
             f"{r['model']}:{r['seed']}")
            for r in failures
        ]  # fmt: skip
        lines += _grouped(items)
    return lines


def ops_summary(res: list[dict], seconds: float) -> list[str]:
    kinds = list(dict.fromkeys(r["kind"] for r in sorted(res, key=lambda r: r["index"])))
    by_kind = {k: Counter(r["verdict"] for r in res if r["kind"] == k) for k in kinds}
    total = Counter(r["verdict"] for r in res)
    exact = sum(total[v] for v in BIT_EXACT)
    seed = res[0]["seed"] if res else 0
    lines = [
        f"op configurations: {len(res)} (seed {seed}) in {seconds:.0f} s: {exact} bit-exact "
        f"({total['exact']} with the oracle, {total['exact_mirror']} with the numpy mirror where the oracle cannot "
        f"serve), {total['failure']} failing",
        f"  {'kind':18s}" + "".join(f"{v:>15s}" for v in VERDICTS),
    ]
    for k in kinds:
        lines.append(f"  {k:18s}" + "".join(f"{by_kind[k][v]:15d}" for v in VERDICTS))
    lines.append(f"  {'total':18s}" + "".join(f"{total[v]:15d}" for v in VERDICTS))
    odd = [r for r in res if r["verdict"] not in BIT_EXACT]
    if odd:
        lines.append("configurations not bit-exact, grouped (seed:index; rerun: python -m tests.fuzz.run ops "
                     "--seed S --start I --n 1):")  # fmt: skip
        items = [
            (_group_key(r["verdict"], r["kind"], r.get("detail", "")),
             f"[{r['verdict']}] {r['kind']}: {r.get('detail', '')} | e.g. {r.get('desc', '')}",
             f"{r['seed']}:{r['index']}")
            for r in odd
        ]  # fmt: skip
        lines += _grouped(items)
    return lines


def quant_summary(res: list[dict], models: list[str], families: list[str], seconds: float) -> list[str]:
    """Counts by outcome, by family and by model; the CLI's agreement; every failure grouped by cause and message."""
    kinds = Counter(r["kind"] for r in res)
    verdicts = Counter(r.get("oracle", "") or "off" for r in res if r["kind"] == "matched")
    failures = [r for r in res if r["kind"] == "failure"]
    seeds = [r["seed"] for r in res]
    lines = [
        f"quant cases: {len(res)} (seeds {min(seeds, default=0)}..{max(seeds, default=-1)}) of "
        f"{', '.join(families)} on {', '.join(models)}, in {seconds:.0f} s",
        f"  clean error          {kinds['clean_error']:6d}",
        f"  quantized, matched   {kinds['matched']:6d}  (oracle: "
        + ", ".join(f"{verdicts[v]} {v}" for v in ("matched", "skipped", "off") if verdicts[v])
        + ")",
        f"  anything else        {kinds['failure']:6d}",
    ]
    cli = [r for r in res if r.get("cli")]
    if cli:
        lines.append(f"  CLI checked on {len(cli)} cases: " + ", ".join(f"{v} {k}" for k, v in
                                                                       sorted(Counter(r['cli'] for r in cli).items())))  # fmt: skip
    for label, key, values in (("family", "family", families), ("model", "model", models)):
        parts = []
        for v in values:
            c = Counter(r["kind"] for r in res if r[key] == v)
            parts.append(f"{v} {c['clean_error']}/{c['matched']}/{c['failure']}")
        lines.append(f"  by {label} (clean error/matched/else): " + ", ".join(parts))
    if failures:
        causes = Counter(r.get("cause", "?") for r in failures)
        lines.append("  failures by cause: " + ", ".join(f"{k} {v}" for k, v in causes.most_common()))
        lines.append("failing cases, grouped by cause and message (family:model:seed):")
        items = [
            (_group_key(r.get("cause", ""), r.get("detail", "")),
             f"[{r.get('cause')}] {r.get('detail', '')} | e.g. {r.get('edits', '')}",
             f"{r['family']}:{r['model']}:{r['seed']}")
            for r in failures
        ]  # fmt: skip
        lines += _grouped(items)
    return lines

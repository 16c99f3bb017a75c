"""The domain-shift analysis exactly as pre-registered in results/domain_shift/README.md.

Per set: the sampler means (raw and `center`) beside the untrained model; six paired tests per primary column
(hybrid vs xx, hybrid vs xy, xx vs xy, each sampler vs untrained), Holm-corrected in one family per set; the gain
over the untrained model (mean ± 95 % t over seeds) and its retention relative to the same sampler's XQuAD-R
gain; whether the near-domain order of the samplers holds; where fine-tuning significantly hurts. Secondary
sets/columns and the `center` scores get the same tests in families of their own and do not enter the answer.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

import numpy as np

from src.core import keys
from src.reporting.stats import mean_ci
from src.reporting.tables import (
    LOWER_IS_BETTER,
    Comparison,
    ReportedRun,
    fmt,
    significance,
    write_csv,
)
from src.utils.markdown import markdown

NEAR = "xquad_r"
UNTRAINED = "untrained"
SAMPLERS = ("xx", "xy", "hybrid-a0.5")
GRID = ("mono/map", "cross/map", "multi/map", "multi/rank_distance")
BITEXT = ("cross/r1", "multi/map", "multi/rank_distance")
# The pre-registered columns: primary sets answer the question, secondary ones are reported beside them.
PRIMARY: dict[str, tuple[str, ...]] = {NEAR: GRID, "ntrex": GRID, "ntrex_bitext": BITEXT, "sib200": BITEXT,
                                       "tico19_medical": BITEXT, "tatoeba": ("cross/r1",)}
SECONDARY: dict[str, tuple[str, ...]] = {"ntrex_doc": GRID, "tico19": (*BITEXT, "cross/map"),
                                         "ntrex_bitext": ("cross/map",), "sib200": ("cross/map",),
                                         "tico19_medical": ("cross/map",), "tatoeba": ("cross/map",)}
# A column's near-domain counterpart (retention, ranking): translation R@1 is set against XQuAD-R cross mAP.
COUNTERPART = {"mono/map": "mono/map", "cross/map": "cross/map", "cross/r1": "cross/map",
               "multi/map": "multi/map", "multi/rank_distance": "multi/rank_distance"}
# Below this XQuAD-R gain there is nothing to retain: retention is not reported.
MIN_NEAR_GAIN = {"rank_distance": 20.0}
MIN_NEAR_GAIN_DEFAULT = 0.02

PerQueryLookup = Callable[[ReportedRun, str], object]


def column_key(eval_set: str, column: str, variant: str = "") -> str:
    """`sib200.center/cross/r1` from (`sib200`, `cross/r1`, `center`)."""
    return f"{eval_set}.{variant}/{column}" if variant else f"{eval_set}/{column}"


def lower_is_better(column: str) -> bool:
    """Rank distance: fewer ranks between a query's relevant passages is better."""
    return column.rpartition("/")[2] in LOWER_IS_BETTER


def gain(model: float, untrained: float, column: str) -> float:
    """Improvement over the untrained model, positive when better (rank distance: untrained − model)."""
    return untrained - model if lower_is_better(column) else model - untrained


def as_untrained(untrained: ReportedRun, seeds: Sequence[str]) -> list[ReportedRun]:
    """The seed-free untrained run once per seed, so each seed of a sampler is paired with the same shares."""
    return [dataclasses.replace(untrained, sampling=UNTRAINED, seed=s) for s in seeds]


def family(samplers: Mapping[str, list[ReportedRun]], untrained: ReportedRun, eval_set: str, cols: Sequence[str],
           per_query: PerQueryLookup, variant: str = "", n_resamples: int = 9999, seed: int = 0
           ) -> list[Comparison]:
    """One Holm family: the six comparisons on each of a set's columns (`variant`: debias view, e.g. center)."""
    seeds = sorted({r.seed for runs in samplers.values() for r in runs})
    groups = {("", name): runs for name, runs in samplers.items()}
    groups["", UNTRAINED] = as_untrained(untrained, seeds)
    return significance(groups, [column_key(eval_set, c, variant) for c in cols], per_query, n_resamples, seed)


@dataclasses.dataclass
class Gain:
    """One sampler's gain over the untrained model on one set and column, and its retention."""

    sampler: str
    eval_set: str
    column: str
    per_seed: dict[str, float]
    retention_per_seed: dict[str, float] = dataclasses.field(default_factory=dict)
    retention_note: str = ""

    @property
    def mean_ci(self) -> tuple[float, float]:
        """Mean ± 95 % t half-width over seeds."""
        return mean_ci(list(self.per_seed.values()))

    @property
    def retention(self) -> tuple[float, float]:
        """Retention mean ± 95 % t half-width over seeds (NaN when not reported)."""
        return mean_ci(list(self.retention_per_seed.values())) if self.retention_per_seed else (math.nan, math.nan)


def gains(samplers: Mapping[str, list[ReportedRun]], untrained: ReportedRun,
          table: Mapping[str, Sequence[str]] = PRIMARY, variant: str = "") -> list[Gain]:
    """Gain (and retention where a near-domain gain exists) per sampler, set and column."""
    out = []
    for name, runs in samplers.items():
        for eval_set, cols in table.items():
            for col in cols:
                key = column_key(eval_set, col, variant)
                base = untrained.metrics.get(key, math.nan)
                per_seed = {r.seed: gain(r.metrics.get(key, math.nan), base, col) for r in runs}
                g = Gain(name, eval_set, col, per_seed)
                if eval_set != NEAR:
                    _retention(g, runs, untrained, variant)
                out.append(g)
    return out


def _retention(g: Gain, runs: Sequence[ReportedRun], untrained: ReportedRun, variant: str) -> None:
    """Per seed: this gain divided by the same model's gain on XQuAD-R's counterpart column."""
    near_col = COUNTERPART[g.column]
    near_key = column_key(NEAR, near_col, variant)
    near = {r.seed: gain(r.metrics.get(near_key, math.nan), untrained.metrics.get(near_key, math.nan), near_col)
            for r in runs}
    floor = MIN_NEAR_GAIN.get(near_col.rpartition("/")[2], MIN_NEAR_GAIN_DEFAULT)
    near_mean = mean_ci(list(near.values()))[0]
    if not near_mean >= floor:
        g.retention_note = f"not reported: XQuAD-R {near_col} gain {near_mean:.3g} < {floor:g}"
        return
    g.retention_per_seed = {s: g.per_seed[s] / near[s] for s in g.per_seed if s in near}


def sampler_order(samplers: Mapping[str, list[ReportedRun]], key: str, column: str) -> list[str]:
    """Samplers from best to worst by their mean over seeds on one metric key."""
    means = {name: mean_ci([r.metrics.get(key, math.nan) for r in runs])[0] for name, runs in samplers.items()}
    return sorted(means, key=lambda n: means[n] if lower_is_better(column) else -means[n])


def keeps_ranking(samplers: Mapping[str, list[ReportedRun]], eval_set: str, column: str, variant: str = "") -> bool:
    """Whether the samplers' order on a set and column is their order on XQuAD-R's counterpart column."""
    near_col = COUNTERPART[column]
    return (sampler_order(samplers, column_key(eval_set, column, variant), column)
            == sampler_order(samplers, column_key(NEAR, near_col, variant), near_col))


def hurts(comparisons: Sequence[tuple[str, Comparison]]) -> list[Comparison]:
    """Primary vs-untrained tests where the sampler is significantly worse than the untrained model."""
    return [c for fam, c in comparisons if fam.startswith("primary") and UNTRAINED in (c.a, c.b)
            and c.significant and c.winner() == UNTRAINED]


def label_means(pq: object, setting: str, metric: str) -> dict[str, float]:
    """Macro value per label (SIB-200 topic, TICO-19 origin): per query language, the mean over its rows of that
    label (a row's value: its mean over the setting's pairs), then the mean over languages."""
    per_label: dict[str, list[float]] = {}
    for x in pq.languages:  # type: ignore[attr-defined]
        labels = pq.labels.get(x)  # type: ignore[attr-defined]
        if labels is None:
            continue
        rows = _row_values(pq, x, setting, metric)
        for label in np.unique(labels):
            values = rows[labels == label]
            if np.isfinite(values).any():
                per_label.setdefault(str(label), []).append(float(np.nanmean(values)))
    return {label: float(np.mean(v)) for label, v in sorted(per_label.items())}


def language_means(pq: object, setting: str, metric: str) -> dict[str, float]:
    """Macro value per query language (the mean over its rows of each row's mean over the setting's pairs)."""
    out = {}
    for x in pq.languages:  # type: ignore[attr-defined]
        rows = _row_values(pq, x, setting, metric)
        if np.isfinite(rows).any():
            out[x] = float(np.nanmean(rows))
    return out


def _row_values(pq: object, x: str, setting: str, metric: str) -> np.ndarray:
    """Each query row of language x: its metric averaged over the setting's pairs (NaN where none is scored)."""
    arrays = pq.arrays  # type: ignore[attr-defined]
    if setting == keys.MULTI:
        name = keys.array_key(keys.MULTI, x, metric)
        return np.asarray(arrays[name], dtype=np.float64) if name in arrays else np.full(0, np.nan)
    pairs = [np.asarray(arrays[k], dtype=np.float64) for y in pq.languages  # type: ignore[attr-defined]
             if keys.pair_setting(x, y) == setting and (k := keys.pair_array_key(x, y, metric)) in arrays]
    if not pairs:
        return np.full(0, np.nan)
    stacked = np.stack(pairs)
    counts = np.isfinite(stacked).sum(axis=0)
    with np.errstate(invalid="ignore"):
        return np.where(counts > 0, np.nansum(stacked, axis=0) / np.maximum(counts, 1), np.nan)


def _sets_present(runs: Sequence[ReportedRun], untrained: ReportedRun, table: Mapping[str, Sequence[str]]
                  ) -> dict[str, tuple[str, ...]]:
    """The pre-registered sets that every run and the untrained model were evaluated on."""
    have = set(untrained.eval_sets).intersection(*(set(r.eval_sets) for r in runs))
    return {s: tuple(cols) for s, cols in table.items() if s in have}


def main_table(samplers: Mapping[str, list[ReportedRun]], baselines: Mapping[str, ReportedRun], eval_set: str,
               cols: Sequence[str], variant: str = "") -> tuple[list[str], list[list[str]], list[dict]]:
    """(header, markdown rows, long csv rows) of one set: baselines first (their own variant keys), then samplers."""
    header = ["model", *cols]
    md, rows = [], []
    for name, run in baselines.items():
        values = [run.metrics.get(column_key(eval_set, c, _variant_of(name) or variant), math.nan) for c in cols]
        md.append([name, *(fmt(v, math.nan) for v in values)])
        rows += [{"set": eval_set, "variant": variant or "raw", "model": name, "column": c, "mean": v,
                  "ci95": math.nan, "seeds": ""} for c, v in zip(cols, values)]
    for name, runs in samplers.items():
        cells = [mean_ci([r.metrics.get(column_key(eval_set, c, variant), math.nan) for r in runs]) for c in cols]
        md.append([f"{name}{'.' + variant if variant else ''}", *(fmt(m, ci) for m, ci in cells)])
        seeds = ",".join(sorted(r.seed for r in runs))
        rows += [{"set": eval_set, "variant": variant or "raw", "model": name, "column": c, "mean": m, "ci95": ci,
                  "seeds": seeds} for c, (m, ci) in zip(cols, cells)]
    return header, md, rows


def _variant_of(baseline: str) -> str:
    """`untrained.center` -> `center`; `untrained` -> ``."""
    return baseline.partition(".")[2]


def write_domain_shift(samplers: Mapping[str, list[ReportedRun]], untrained: ReportedRun, per_query: PerQueryLookup,
                       out_dir: Path, n_resamples: int = 9999, seed: int = 0) -> dict:
    """Every pre-registered table, test, plot and breakdown into out_dir; returns report.json's content."""
    from src.reporting import plots

    runs = [r for rs in samplers.values() for r in rs]
    primary = _sets_present(runs, untrained, PRIMARY)
    secondary = _sets_present(runs, untrained, SECONDARY)
    if NEAR not in primary:
        raise ValueError(f"the runs and the untrained model must all be evaluated on {NEAR} (the near domain)")
    out_dir.mkdir(parents=True, exist_ok=True)
    baselines = {UNTRAINED: untrained, f"{UNTRAINED}.center": untrained, f"{UNTRAINED}.lir": untrained}
    parts = ["# Domain shift: tables (pre-registered columns; mean ± 95 % t over seeds)\n"]
    table_rows: list[dict] = []
    for label, table in (("primary", primary), ("secondary", secondary)):
        for eval_set, cols in table.items():
            for variant in ("", "center"):
                header, md, rows = main_table(samplers, baselines if not variant else
                                              {f"{UNTRAINED}.center": untrained}, eval_set, cols, variant)
                parts.append(f"## {eval_set}{' (center)' if variant else ''} — {label}\n\n" + markdown(header, md))
                table_rows += rows
    (out_dir / "table.md").write_text("\n".join(parts))
    write_csv(out_dir / "table.csv", table_rows)

    comparisons = _families(samplers, untrained, per_query, primary, secondary, n_resamples, seed)
    write_csv(out_dir / "tests.csv", [{"family": f, **dataclasses.asdict(c), "significant": c.significant}
                                      for f, c in comparisons])
    (out_dir / "tests.md").write_text(_tests_md(comparisons))

    all_gains = gains(samplers, untrained, primary)
    center_gains = gains(samplers, untrained, primary, "center")
    write_csv(out_dir / "gains.csv", [_gain_row(g, v) for v, gs in (("raw", all_gains), ("center", center_gains))
                                      for g in gs])
    heat_rows, heat = _heat(samplers, untrained, primary)
    plots.gain_heatmap(heat, heat_rows, [f"{s} {c}" for s, cols in primary.items() for c in cols],
                       out_dir / "gains.png")
    bars = {c: {g.sampler: [] for g in all_gains} for c in ("cross", "multi/map", "multi/rank_distance")}
    for g in all_gains:
        group = "cross" if g.column.startswith("cross") else g.column
        if g.eval_set != NEAR and g.retention_per_seed and group in bars:
            bars[group][g.sampler].append((g.eval_set, *g.retention))
    plots.retention_bars(bars, out_dir / "retention.png")
    ranking = [{"set": s, "column": c, "order": " > ".join(sampler_order(samplers, column_key(s, c), c)),
                "near-domain order": " > ".join(sampler_order(samplers, column_key(NEAR, COUNTERPART[c]),
                                                              COUNTERPART[c])),
                "keeps ranking": keeps_ranking(samplers, s, c)} for s, cols in primary.items() if s != NEAR
               for c in cols]
    write_csv(out_dir / "ranking.csv", ranking)
    breakdowns = _breakdowns(samplers, untrained, per_query, out_dir)
    worse = hurts(comparisons)
    return {"n_runs": len(runs), "samplers": {k: sorted(r.seed for r in v) for k, v in samplers.items()},
            "untrained_run": untrained.run_id, "primary_sets": list(primary), "secondary_sets": list(secondary),
            "comparisons": [{"family": f, **dataclasses.asdict(c), "significant": c.significant}
                            for f, c in comparisons],
            "fine_tuning_hurts": [{"column": c.column, "sampler": c.a if c.b == UNTRAINED else c.b,
                                   "p_holm": c.p_holm} for c in worse],
            "ranking": ranking, "breakdowns": breakdowns}


def _families(samplers: Mapping[str, list[ReportedRun]], untrained: ReportedRun, per_query: PerQueryLookup,
              primary: Mapping[str, Sequence[str]], secondary: Mapping[str, Sequence[str]], n_resamples: int,
              seed: int) -> list[tuple[str, Comparison]]:
    """The primary families (one per set), then the secondary ones, as pre-registered."""
    out: list[tuple[str, Comparison]] = []
    for label, table, variant in (("primary", primary, ""), ("secondary", secondary, ""),
                                  ("secondary center", primary, "center")):
        for eval_set, cols in table.items():
            name = f"{label}: {eval_set}{'.' + variant if variant else ''}"
            out += [(name, c) for c in family(samplers, untrained, eval_set, cols, per_query, variant,
                                              n_resamples, seed)]
    return out


def _tests_md(comparisons: Sequence[tuple[str, Comparison]]) -> str:
    """One markdown table per Holm family."""
    parts, families = ["# Domain shift: paired tests (two-level seed × cluster sign flips; Holm per family)\n"], {}
    for fam, c in comparisons:
        families.setdefault(fam, []).append(c)
    for fam, comps in families.items():
        parts.append(f"## {fam} ({sum(not c.note for c in comps)} tests)\n\n" + markdown(
            ["column", "a", "b", "seeds", "mean a", "mean b", "p", "p (Holm)", "significant", "note"],
            [[c.column, c.a, c.b, str(c.n_seeds), f"{c.mean_a:.4f}", f"{c.mean_b:.4f}",
              *(("–", "–", "–") if c.note else (f"{c.p:.4g}", f"{c.p_holm:.4g}", "yes" if c.significant else "no")),
              c.note] for c in comps]))
    return "\n".join(parts)


def _gain_row(g: Gain, variant: str) -> dict[str, object]:
    """gains.csv: gain and retention with their intervals and per-seed values."""
    (m, ci), (rm, rci) = g.mean_ci, g.retention
    return {"variant": variant, "sampler": g.sampler, "set": g.eval_set, "column": g.column, "gain": m,
            "gain ci95": ci, "gain per seed": " ".join(f"{s}:{v:.4f}" for s, v in sorted(g.per_seed.items())),
            "retention": rm, "retention ci95": rci,
            "retention per seed": " ".join(f"{s}:{v:.3f}" for s, v in sorted(g.retention_per_seed.items())),
            "retention note": g.retention_note}


def _heat(samplers: Mapping[str, list[ReportedRun]], untrained: ReportedRun, primary: Mapping[str, Sequence[str]]
          ) -> tuple[list[str], np.ndarray]:
    """Rows (samplers raw, samplers center, untrained.center, untrained.lir) × primary columns of gains."""
    rows, values = [], []
    for variant in ("", "center"):
        for name, runs in samplers.items():
            rows.append(f"{name}{'.' + variant if variant else ''}")
            values.append([mean_ci([gain(r.metrics.get(column_key(s, c, variant), math.nan),
                                         untrained.metrics.get(column_key(s, c), math.nan), c) for r in runs])[0]
                           for s, cols in primary.items() for c in cols])
    for variant in ("center", "lir"):
        rows.append(f"{UNTRAINED}.{variant}")
        values.append([gain(untrained.metrics.get(column_key(s, c, variant), math.nan),
                            untrained.metrics.get(column_key(s, c), math.nan), c)
                       for s, cols in primary.items() for c in cols])
    return rows, np.asarray(values, dtype=np.float64)


BREAKDOWNS = {"sib200": "by_topic.csv", "tico19": "by_origin.csv"}


def _breakdowns(samplers: Mapping[str, list[ReportedRun]], untrained: ReportedRun, per_query: PerQueryLookup,
                out_dir: Path) -> dict[str, str]:
    """Per-label tables (SIB-200 topic, TICO-19 origin) and a per-language table of every set (descriptive)."""
    written: dict[str, str] = {}
    models = {UNTRAINED: [untrained], **samplers}
    lang_rows: list[dict] = []
    for eval_set in sorted({s for runs in models.values() for r in runs for s in r.eval_sets}):
        cols = PRIMARY.get(eval_set) or SECONDARY.get(eval_set) or ()
        for col in cols:
            setting, _, metric = col.partition("/")
            for name, runs in models.items():
                found = [pq for r in runs if (pq := per_query(r, eval_set)) is not None]
                if not found:
                    continue
                per_lang = [language_means(pq, setting, keys.array_metric(metric)) for pq in found]
                for lang in per_lang[0]:
                    lang_rows.append({"set": eval_set, "column": col, "model": name, "language": lang,
                                      "value": float(np.mean([p.get(lang, math.nan) for p in per_lang]))})
                if eval_set in BREAKDOWNS and setting != keys.MONO:
                    per_label = [label_means(pq, setting, keys.array_metric(metric)) for pq in found]
                    rows = [{"column": col, "model": name, "label": label,
                             "value": float(np.mean([p.get(label, math.nan) for p in per_label]))}
                            for label in per_label[0]]
                    path = out_dir / BREAKDOWNS[eval_set]
                    _append_csv(path, rows, first=BREAKDOWNS[eval_set] not in written)
                    written[BREAKDOWNS[eval_set]] = eval_set
    write_csv(out_dir / "per_language.csv", lang_rows)
    return written


def _append_csv(path: Path, rows: list[dict], first: bool) -> None:
    """write_csv for the first block of a file, then rows appended under the same header."""
    import csv

    if first:
        write_csv(path, rows)
        return
    with path.open("a", newline="", encoding="utf-8") as f:
        csv.DictWriter(f, fieldnames=list(rows[0]), lineterminator="\n").writerows(rows)

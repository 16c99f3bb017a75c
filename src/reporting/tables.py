"""Report tables from run records: the paper's Tables 1-2 (macro) and 3-8 (per language), with significance.

Rows are (configuration, sampler): runs share a configuration when their flattened MLflow params agree on
everything except EXCLUDED_PARAMS, so a report over a whole experiment never pools different training sets,
step counts or models, and only samplers of one configuration are compared.
"""

from __future__ import annotations

import csv
import fnmatch
import functools
import hashlib
import itertools
import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from src.core import keys
from src.reporting.stats import (
    MIN_SEEDS,
    cluster_sums,
    holm,
    mean_ci,
    query_contributions,
    question_clusters,
    seed_cluster_test,
)

if TYPE_CHECKING:
    from src.evaluation.artifacts.per_query import PerQuery

ALPHA_LEVEL = 0.05
# Columns of the macro table per evaluation set: (setting, metric), the same in the runs' metrics and per-query arrays.
MACRO_COLUMNS = ((keys.MONO, "map"), (keys.CROSS, "map"), (keys.MULTI, "map"), (keys.MULTI, keys.RANK_DISTANCE))
LOWER_IS_BETTER = (keys.RANK_DISTANCE,)  # bias: fewer ranks between a query's relevant passages is better
# Flattened MLflow params (fnmatch patterns) that do not define the experiment: left out of the configuration
# fingerprint. Every other param must agree for runs to share a row or be compared.
EXCLUDED_PARAMS = (
    # The report's own axes: samplers are what is compared, seeds are the replicates.
    "sampling.*", "seed",
    # Where data, caches and outputs live and where the run is logged. Values of paths.* inside other params
    # are replaced by the key (normalise_params), so a data root moved to another machine changes nothing.
    "paths.*", "logger.*", "hydra.*", "trainer.default_root_dir", "callbacks.*.dirpath", "callbacks.*.export_dir",
    # The host as src/run.py logs it (device, cores, CPU model and flags) and the torch thread count.
    "runtime.*", "threads",
    # What the console shows (src/runtime/console.py).
    "console.*",
    # How a run was launched or continued (cf. src/runs/record.py VOLATILE_KEYS); ckpt_path stays: starting from
    # another run's weights is another experiment.
    "resume", "slurm_auto_requeue", "debug.batch_log", "debug.step_sleep_s",
    # Which files an evaluation writes and its batch size, not what it measures.
    "export_model", "eval.exports", "eval.trec_depth", "eval.save_embeddings", "eval.log_large_artifacts",
    "eval.batch_size", "callbacks.retrieval_eval.exports", "callbacks.retrieval_eval.trec_depth",
    "callbacks.retrieval_eval.save_embeddings", "callbacks.retrieval_eval.batch_size",
)
_LABEL_MAX = 60  # longer configuration differences get a hash label, listed in the report


@dataclass
class ReportedRun:
    """One training run as read from MLflow: what it was (model, sampler, seed, params) and what it scored."""

    run_id: str
    name: str
    status: str
    model: str
    sampling: str  # label, e.g. `xx` or `hybrid-a0.5`
    alpha: float | None
    seed: str
    eval_sets: tuple[str, ...]
    metrics: dict[str, float] = field(default_factory=dict)
    error: str = ""
    params: dict[str, str] = field(default_factory=dict)  # flattened config as logged to MLflow
    start_time: int = 0  # ms since the epoch; the newest of duplicated runs is kept
    # validation learning curves: {metric key (keys.CURVE_KEYS): [(step, value), ...]} in step order
    curves: dict[str, list[tuple[int, float]]] = field(default_factory=dict)
    end_time: int = 0  # ms since the epoch (0: still running)
    selected_step: str = ""  # the validation-chosen checkpoint's step that was evaluated ("" = the last weights)
    commit: str = ""  # the project's git commit when the run was opened (a resumed run keeps its first one)
    resumed: bool = False  # continued from a checkpoint after an interruption (its wall time includes the pause)


@dataclass
class Comparison:
    """One test between two samplers of a configuration on one column (p NaN when not tested: see note)."""

    column: str  # e.g. `xquad_r/cross/map`
    model: str  # configuration label (the model name unless it has several configurations)
    a: str
    b: str
    mean_a: float
    mean_b: float
    p: float
    p_holm: float = float("nan")
    n_seeds: int = 0  # matched seeds
    se_questions: float = float("nan")
    se_seeds: float = float("nan")
    note: str = ""  # why it was not tested, e.g. `n/a (2 seeds)`

    @property
    def significant(self) -> bool:
        """Holm-adjusted p below the 0.05 level (never for an untested pair)."""
        return self.p_holm < ALPHA_LEVEL

    def winner(self) -> str | None:
        """The better sampler when the difference is significant, else None."""
        if not self.significant:
            return None
        lower = keys.parse(self.column).metric in LOWER_IS_BETTER
        return self.a if (self.mean_a < self.mean_b) == lower else self.b


def columns(eval_sets: Sequence[str]) -> list[str]:
    """Macro-table metric keys: mono / cross / multi mAP and the rank-distance bias per evaluation set."""
    return [keys.key(s, setting, metric) for s in eval_sets for setting, metric in MACRO_COLUMNS]


def seed_key(seed: str) -> tuple[int, float, str]:
    """Sort seeds numerically where they are numbers (2 before 10), else by text."""
    try:
        return 0, float(seed), seed
    except ValueError:
        return 1, 0.0, seed


def normalise_params(params: Mapping[str, str]) -> dict[str, str]:
    """Params without EXCLUDED_PARAMS, with the run's own path values written as `${paths.key}`."""
    roots = sorted(((str(v), k) for k, v in params.items() if k.startswith("paths.") and "/" in str(v)),
                   key=lambda item: -len(item[0]))  # only real paths: a bare "data" would hit module names
    out = {}
    for key, value in params.items():
        if any(fnmatch.fnmatchcase(key, pattern) for pattern in EXCLUDED_PARAMS):
            continue
        text = str(value)
        for root, name in roots:  # longest first: output_dir before the root_dir it lies in
            text = text.replace(root, "${" + name + "}")
        out[key] = text
    return out


def configuration_key(params: Mapping[str, str]) -> tuple[tuple[str, str], ...]:
    """The experiment a run belongs to: its normalised params, sorted."""
    return tuple(sorted(normalise_params(params).items()))


def _configurations(runs: Sequence[ReportedRun]) -> list[tuple[str, tuple, str, dict[str, str]]]:
    """(model, fingerprint, label, params that differ from the model's other configurations) per configuration."""
    by_model: dict[str, set[tuple]] = {}
    for run in runs:
        by_model.setdefault(run.model, set()).add(configuration_key(run.params))
    out = []
    for model, found in sorted(by_model.items()):
        prints = sorted(found)
        if len(prints) == 1:
            out.append((model, prints[0], model, {}))
            continue
        dicts = [dict(fp) for fp in prints]
        differing = sorted({k for d in dicts for k in d if len({e.get(k, "<unset>") for e in dicts}) > 1})
        for fp, d in zip(prints, dicts):
            diff = {k: d.get(k, "<unset>") for k in differing}
            text = ", ".join(f"{k}={v}" for k, v in diff.items())
            digest = hashlib.sha1(repr(fp).encode()).hexdigest()[:6]
            out.append((model, fp, f"{model}[{text}]" if len(text) <= _LABEL_MAX else f"{model}#{digest}", diff))
    return out


def config_differences(runs: Sequence[ReportedRun]) -> dict[str, dict[str, str]]:
    """Configuration label -> the params that tell it apart from the model's other configurations ({} if one)."""
    return {label: diff for _, _, label, diff in _configurations(runs)}


def config_labels(runs: Sequence[ReportedRun]) -> dict[str, str]:
    """Run id -> configuration label: the model name, or `model[key=value, ...]` when the model has several."""
    by_print = {(model, fp): label for model, fp, label, _ in _configurations(runs)}
    return {r.run_id: by_print[r.model, configuration_key(r.params)] for r in runs}


def drop_duplicate_seeds(runs: Sequence[ReportedRun]) -> tuple[list[ReportedRun], list[ReportedRun]]:
    """(kept, superseded): of several runs with the same configuration, sampler and seed only the newest counts.

    A rerun of a job is not another seed: pooling it would shrink the interval and fake a replicate.
    """
    newest: dict[tuple, ReportedRun] = {}
    for run in sorted(runs, key=lambda r: (r.start_time, r.name, r.run_id)):
        newest[(run.model, configuration_key(run.params), run.sampling, run.seed)] = run
    kept_ids = {r.run_id for r in newest.values()}
    return [r for r in runs if r.run_id in kept_ids], [r for r in runs if r.run_id not in kept_ids]


def group_runs(runs: Sequence[ReportedRun]) -> dict[tuple[str, str], list[ReportedRun]]:
    """Runs by (configuration label, sampling label), seeds together in seed order, rows sorted."""
    labels = config_labels(runs)
    out: dict[tuple[str, str], list[ReportedRun]] = {}
    for run in sorted(runs, key=lambda r: (labels[r.run_id], r.sampling, seed_key(r.seed))):
        group = out.setdefault((labels[run.run_id], run.sampling), [])
        if group and group[-1].seed == run.seed:
            raise ValueError(f"{labels[run.run_id]} / {run.sampling}: seed {run.seed} twice ({group[-1].name}, "
                             f"{run.name}); drop_duplicate_seeds first")
        group.append(run)
    return out


def best_rows(cells: Mapping[tuple[str, str], tuple[float, float]], column: str) -> set[tuple[str, str]]:
    """Rows holding the best mean of a column (max, or min for lower-is-better metrics)."""
    finite = {k: v[0] for k, v in cells.items() if math.isfinite(v[0])}
    if len(finite) < 2:  # a single row is trivially best: mark nothing
        return set()
    pick = min if keys.parse(column).metric in LOWER_IS_BETTER else max
    best = pick(finite.values())
    return {k for k, v in finite.items() if v == best}


PerQueryLookup = Callable[[ReportedRun, str], "PerQuery | None"]
# (question ids, per-question sums of a run's shares) for one run, evaluation set, setting and metric.
Clustered = tuple[np.ndarray, np.ndarray]


def significance(groups: Mapping[tuple[str, str], list[ReportedRun]], cols: Sequence[str],
                 per_query: PerQueryLookup, n_resamples: int = 9999, seed: int = 0,
                 against: str | None = None) -> list[Comparison]:
    """Tests between every two samplers of a configuration on every column, Holm-corrected over those tested.

    `against`: only the pairs that include this sampler label (each other row tested against it).

    `per_query(run, eval_set)` gives the run's PerQuery (with qids) or None when it saved none. Each run's
    per-query shares of the column's macro average are summed per question (xling_id, all its languages).
    A pair is tested only with the same seed set on both sides and at least MIN_SEEDS seeds
    (stats.seed_cluster_test on the seed x question differences); otherwise its Comparison has p = NaN and
    a note saying why.
    """
    questions: dict[tuple[str, str], tuple[np.ndarray, np.ndarray]] = {}  # the same for every column of a set
    cache: dict[tuple[str, str, str, str], Clustered | None] = {}

    def lookup(run: ReportedRun, eval_set: str, setting: str, metric: str) -> Clustered | None:
        key = (run.run_id, eval_set, setting, metric)
        if key in cache:
            return cache[key]
        pq = per_query(run, eval_set)
        if pq is None or not pq.qids:
            cache[key] = None
            return None
        if (run.run_id, eval_set) not in questions:
            questions[run.run_id, eval_set] = question_clusters(pq.qids, pq.languages, pq.clusters)
        names, index = questions[run.run_id, eval_set]
        shares = query_contributions(pq.arrays, pq.languages, setting, keys.array_metric(metric))
        cache[key] = names, cluster_sums(shares, index, names.size)
        return cache[key]

    out: list[Comparison] = []
    for column in cols:
        parsed = keys.parse(column)
        eval_set, setting, metric = parsed.dataset, parsed.setting, parsed.metric
        for config in sorted({c for c, _ in groups}):
            samplers = [s for c, s in groups if c == config]
            for a, b in itertools.combinations(samplers, 2):
                if against is not None and against not in (a, b):
                    continue
                runs = (groups[config, a], groups[config, b])
                per_run = functools.partial(lookup, eval_set=eval_set, setting=setting, metric=metric)
                out.append(_compare(column, config, (a, b), runs, per_run, n_resamples, seed))
    tested = [c for c in out if not c.note]
    for comp, p in zip(tested, holm([c.p for c in tested])):
        comp.p_holm = float(p)
    return out


def _compare(column: str, config: str, samplers: tuple[str, str], runs: tuple[list[ReportedRun], list[ReportedRun]],
             lookup: Callable[[ReportedRun], Clustered | None], n_resamples: int, seed: int) -> Comparison:
    """One pair of samplers on one column: matched seeds, clustered shares, seed_cluster_test."""
    (a, b), (runs_a, runs_b) = samplers, runs
    seeds_a, seeds_b = {r.seed: r for r in runs_a}, {r.seed: r for r in runs_b}
    matched = sorted(set(seeds_a) & set(seeds_b), key=seed_key)
    means = [mean_ci([r.metrics.get(column, math.nan) for r in side])[0] for side in runs]
    comp = Comparison(column, config, a, b, means[0], means[1], math.nan, n_seeds=len(matched))
    if set(seeds_a) != set(seeds_b):
        comp.note = f"skipped: seed sets differ ({a}: {_seeds(seeds_a)}; {b}: {_seeds(seeds_b)})"  # no pairs
        return comp
    if len(matched) < MIN_SEEDS:
        comp.note = f"n/a ({len(matched)} seed{'s' if len(matched) != 1 else ''})"
        return comp
    sides = [[lookup(by_seed[s]) for s in matched] for by_seed in (seeds_a, seeds_b)]
    missing = [by_seed[s].name for by_seed, side in zip((seeds_a, seeds_b), sides)
               for s, found in zip(matched, side) if found is None]
    if missing:
        comp.note = f"skipped: no per-query arrays with question ids ({', '.join(missing)})"
        return comp
    rows = [found for side in sides for found in side if found is not None]  # a's seeds, then b's
    if any(not np.array_equal(names, rows[0][0]) for names, _ in rows):
        comp.note = "skipped: the runs scored different questions"
        return comp
    shares = np.stack([sums for _, sums in rows]).reshape(2, len(matched), -1)  # (sampler, seed, question)
    result = seed_cluster_test(shares[0] - shares[1], n_resamples, seed)
    comp.mean_a, comp.mean_b = (float(x) for x in shares.sum(axis=2).mean(axis=1))
    comp.p, comp.se_questions, comp.se_seeds = result.p, result.se_questions, result.se_seeds
    return comp


def _seeds(by_seed: Mapping[str, ReportedRun]) -> str:
    """`1,2,3`"""
    return ",".join(sorted(by_seed, key=seed_key))


def average_per_query(
    items: Sequence[tuple[tuple[str, ...], dict[str, np.ndarray]] | None],
) -> tuple[tuple[str, ...], dict[str, np.ndarray]] | None:
    """Element-wise mean of several runs' per-query arrays (None if any run has none)."""
    if not items or any(i is None for i in items):
        return None
    langs, first = items[0]  # type: ignore[misc]
    for other_langs, arrays in items[1:]:  # type: ignore[misc]
        if other_langs != langs or arrays.keys() != first.keys():
            raise ValueError(f"runs evaluated different languages or settings ({langs} vs {other_langs})")
    return langs, {k: np.mean([i[1][k] for i in items], axis=0) for k in first}  # type: ignore[index]


def fmt(mean: float, ci: float, digits: int = 3) -> str:
    """`0.512 ± 0.010`, or the mean alone when there is no interval."""
    if not math.isfinite(mean):
        return "–"
    return f"{mean:.{digits}f}" + (f" ± {ci:.{digits}f}" if math.isfinite(ci) else "")


def macro_table(groups: Mapping[tuple[str, str], list[ReportedRun]], cols: Sequence[str],
                comparisons: Sequence[Comparison]) -> tuple[list[str], list[list[str]], list[dict[str, object]]]:
    """(markdown header, markdown rows, csv rows): mean ± CI per cell, best in bold, significant wins marked.

    A cell's `>xy,xx` says this sampler is significantly better (Holm, 0.05) than those samplers of the
    same configuration on that column; the last column says whether its comparisons were tested at all.
    """
    cells = {c: {g: mean_ci([r.metrics.get(c, math.nan) for r in runs]) for g, runs in groups.items()}
             for c in cols}
    wins: dict[tuple[str, str, str], list[str]] = {}
    for comp in comparisons:
        w = comp.winner()
        if w is not None:
            wins.setdefault((comp.column, comp.model, w), []).append(comp.b if w == comp.a else comp.a)
    header = ["model", "sampling", "seeds", *cols, "tests"]
    md_rows, csv_rows = [], []
    for g, runs in groups.items():
        md = [g[0], g[1], str(len(runs))]
        row: dict[str, object] = {"model": g[0], "sampling": g[1], "n_seeds": len(runs),
                                  "seeds": " ".join(r.seed for r in runs)}
        for c in cols:
            mean, ci = cells[c][g]
            text = fmt(mean, ci)
            if g in best_rows(cells[c], c):
                text = f"**{text}**"
            beaten = sorted(wins.get((c, g[0], g[1]), []))
            md.append(text + (f" >{','.join(beaten)}" if beaten else ""))
            row.update({f"{c}": mean, f"{c}/ci95": ci, f"{c}/better_than": ";".join(beaten) or "-"})
        md.append(tests_cell(comparisons, *g))
        row["tests"] = md[-1]
        md_rows.append(md)
        csv_rows.append(row)
    return header, md_rows, csv_rows


def debiased_sets(runs: Sequence[ReportedRun], eval_set: str) -> list[str]:
    """The debiased variants of `eval_set` (`xquad_r.center`, ...) that any of these runs scored, sorted."""
    return sorted({v for r in runs for v in keys.debiased_variants(r.metrics, eval_set)})


def debias_table(groups: Mapping[tuple[str, str], list[ReportedRun]], zero_shot: Sequence[ReportedRun],
                 eval_set: str) -> tuple[list[str], list[list[str]], list[dict[str, object]]]:
    """(header, markdown rows, csv rows): each model as evaluated raw and after each post-hoc debiasing.

    Zero-shot runs (no training) come first, one row per variant; then every (configuration, sampler) with the
    mean ± CI over its seeds. The variants are the debiased sets the runs scored (`eval.debias`).
    """
    header = ["model", "sampling", "debias", "seeds",
              *(f"{setting} {metric}" for setting, metric in MACRO_COLUMNS)]
    md_rows: list[list[str]] = []
    csv_rows: list[dict[str, object]] = []
    rows = [((r.model, "zero-shot"), [r]) for r in zero_shot] + list(groups.items())
    for (config, sampler), runs in rows:
        variants = debiased_sets(runs, eval_set)
        for name in (eval_set, *variants):
            stats = [mean_ci([r.metrics.get(keys.key(name, setting, metric), math.nan) for r in runs])
                     for setting, metric in MACRO_COLUMNS]
            method = keys.debias_method(name) or "none"
            md_rows.append([config, sampler, method, str(len(runs)), *(fmt(m, c) for m, c in stats)])
            row: dict[str, object] = {"model": config, "sampling": sampler, "debias": method, "n_seeds": len(runs)}
            for (setting, metric), (m, c) in zip(MACRO_COLUMNS, stats):  # one set per table: no set in the name
                row.update({f"{setting}/{metric}": m, f"{setting}/{metric}/ci95": c})
            csv_rows.append(row)
    return header, md_rows, csv_rows


def debiased_groups(groups: Mapping[tuple[str, str], list[ReportedRun]], eval_set: str
                    ) -> tuple[dict[tuple[str, str], list[ReportedRun]], dict[str, tuple[ReportedRun, str]]]:
    """Each (configuration, sampler) group once more per debiasing it was scored with, as `{sampler}+{method}`.

    The derived records carry the debiased set's metrics under `eval_set`'s keys, so the usual tables and tests
    apply; the second value maps a derived run id to (the original run, the debiased set) for per-query lookups.
    """
    derived: dict[tuple[str, str], list[ReportedRun]] = {}
    origin: dict[str, tuple[ReportedRun, str]] = {}
    for (config, sampler), runs in groups.items():
        for variant in debiased_sets(runs, eval_set):
            method = keys.debias_method(variant)
            renamed = []
            for r in runs:
                metrics = {keys.key(eval_set, k.setting, k.metric, k.group): v for k, v in
                           ((keys.maybe_parse(t), v) for t, v in r.metrics.items()) if k and k.dataset == variant}
                run_id = f"{r.run_id}+{method}"
                origin[run_id] = (r, variant)
                renamed.append(ReportedRun(run_id, f"{r.name}+{method}", r.status, r.model, f"{sampler}+{method}",
                                         r.alpha, r.seed, (eval_set,), metrics, params=r.params))
            derived[config, f"{sampler}+{method}"] = renamed
    return derived, origin


def _utc(ms: int) -> str:
    """Milliseconds since the epoch as `YYYY-MM-DD HH:MM` UTC ("" for 0: not recorded)."""
    import datetime as dt

    return dt.datetime.fromtimestamp(ms / 1000, dt.timezone.utc).strftime("%Y-%m-%d %H:%M") if ms else ""


def _wall_min(r: ReportedRun) -> float | None:
    """Start to end of a run in minutes (None while running: a reopened run keeps its earlier end time)."""
    return round((r.end_time - r.start_time) / 60000, 1) if r.end_time and r.status != "RUNNING" else None


def run_rows(runs: Sequence[ReportedRun], untrained: Sequence[ReportedRun] = ()) -> list[dict[str, object]]:
    """One row per run, by start time: when and how long it ran, on which precision, CPU and commit, which step
    was evaluated. `untrained` runs (evaluations of the pre-trained weights) have no sampler, seed or steps."""
    pretrained = {"sampling": "none (pre-trained)", "seed": "", "steps": 0, "evaluated_step": "pre-trained weights"}
    tagged = [(r, {}) for r in runs] + [(r, pretrained) for r in untrained]
    return [{**_run_row(r), **override} for r, override in sorted(tagged, key=lambda t: t[0].start_time)]


def _run_row(r: ReportedRun) -> dict[str, object]:
    """runs.csv's row of one run as it was logged."""
    wall = _wall_min(r)
    return {"run": r.name, "model": r.model, "sampling": r.sampling, "seed": r.seed, "status": r.status,
            "start_utc": _utc(r.start_time), "end_utc": "" if wall is None else _utc(r.end_time),
            "wall_min": "" if wall is None else wall, "resumed": "yes" if r.resumed else "",
            "precision": r.params.get("runtime.precision", ""), "cpu": r.params.get("runtime.cpu_model", ""),
            "commit": r.commit[:10], "steps": r.params.get("trainer.max_steps", ""),
            "evaluated_step": r.selected_step or "last"}


def provenance(runs: Sequence[ReportedRun]) -> dict[str, object]:
    """Where and on what the runs ran: counts per commit / CPU / precision, first start, last end, summed wall time.

    The summed wall time counts each run from its start to its end, so a run resumed later includes the pause.
    """
    from collections import Counter

    ended = {r.run_id: w for r in runs if (w := _wall_min(r)) is not None}
    return {"runs": len(runs),
            "commits": dict(Counter(r.commit[:10] or "?" for r in runs)),
            "cpus": dict(Counter(r.params.get("runtime.cpu_model", "?") for r in runs)),
            "precisions": dict(Counter(r.params.get("runtime.precision", "?") for r in runs)),
            "first_start_utc": _utc(min((r.start_time for r in runs if r.start_time), default=0)),
            "last_end_utc": _utc(max((r.end_time for r in runs if r.run_id in ended), default=0)),
            "wall_min_total": round(sum(ended.values()), 1), "runs_without_end": len(runs) - len(ended)}


def curve_rows(groups: Mapping[tuple[str, str], list[ReportedRun]]) -> list[dict[str, object]]:
    """Long-format learning curves: one row per (configuration, sampler, seed, metric, step)."""
    return [{"model": config, "sampling": sampler, "seed": r.seed, "metric": metric, "step": step, "value": value}
            for (config, sampler), runs in groups.items() for r in runs
            for metric, points in r.curves.items() for step, value in points]


def tests_cell(comparisons: Sequence[Comparison], config: str, sampler: str) -> str:
    """`tested (3 seeds)`, or why a row's comparisons were not tested (`n/a (2 seeds)`), `–` without any."""
    mine = [c for c in comparisons if c.model == config and sampler in (c.a, c.b)]
    tested = sorted({c.n_seeds for c in mine if not c.note})
    parts = [f"tested ({','.join(map(str, tested))} seeds)"] if tested else []
    return "; ".join(parts + sorted({c.note for c in mine if c.note})) or "–"


def per_language_table(groups: Mapping[tuple[str, str], list[ReportedRun]], model: str, eval_set: str,
                       metric: str = "map") -> tuple[list[str], list[list[str]]]:
    """The paper's Tables 3-8: rows = query languages + Mean, blocks Mono / Cross / Multi, one column per sampler."""
    samplers = [s for m, s in groups if m == model]
    runs = [r for s in samplers for r in groups[model, s]]
    found = (keys.maybe_parse(k) for r in runs for k in r.metrics)
    langs = sorted({k.query_language for k in found if k is not None and k.group is not None
                    and (k.dataset, k.setting, k.metric) == (eval_set, keys.MONO, metric)})
    header = ["query lang", *(f"{st} {s}" for st in keys.SETTINGS for s in samplers)]
    rows = []
    for lang in [*langs, "Mean"]:
        row = [lang]
        for setting in keys.SETTINGS:
            key = (keys.key(eval_set, setting, metric) if lang == "Mean" else
                   keys.language_key(eval_set, setting, metric, lang))
            block = {s: mean_ci([r.metrics.get(key, math.nan) for r in groups[model, s]])[0] for s in samplers}
            finite = [v for v in block.values() if math.isfinite(v)]
            best = max(finite) if len(finite) > 1 else math.nan  # nothing to mark with one sampler
            row += [f"**{v:.3f}**" if v == best else fmt(v, math.nan) for v in block.values()]
        rows.append(row)
    return header, rows


def write_csv(path: Path, rows: Sequence[Mapping[str, object]]) -> Path:
    """Rows of dicts as CSV (columns from the first row)."""
    with Path(path).open("w", newline="", encoding="utf-8") as f:
        w = csv.DictWriter(f, fieldnames=list(rows[0]) if rows else [], lineterminator="\n")
        w.writeheader()
        w.writerows(rows)
    return Path(path)

"""`newsqa bench`: run the index, QA and store-scale benchmarks and write docs/benchmarks.md.

Each benchmark lives in its own module (index_bench, qa_bench, scale); this one orchestrates
them, records the machine, and renders the figures as Markdown (with the JSON beside it).
"""

from __future__ import annotations

import json
import os
import shutil
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np

from index.embedding import Embedder
from index.quotes import rules_extractor
from index.settings import Settings, apply_offline_env
from qa.errors import EvalError
from qa.eval.data import EvalQuestion
from qa.eval.index_bench import add_one_figures, drop_records, run_index_benchmark
from qa.eval.machine import dir_bytes, machine_info
from qa.eval.peers import StageProgress
from qa.eval.qa_bench import (
    dev_questions,
    open_retriever,
    path_figures,
    retrieval_figures,
    run_qa_benchmark,
    serve_figures,
)
from qa.eval.scale import SCALE_SIZES, MaterialEmbedder, capacity, grow_index, run_scale_benchmark
from qa.retriever import Retriever

BENCHMARKS: tuple[str, ...] = ("index", "qa", "scale", "int8", "targets")
#: What `newsqa bench` runs without --only (as before the targets existed).
DEFAULT_BENCHMARKS: tuple[str, ...] = ("index", "qa", "scale", "int8")
#: What `make bench` runs: issue 15's figures against their floors and targets, the build
#: against a bare encode, and the int8 encoder.
MAKE_BENCH: tuple[str, ...] = ("targets", "index", "int8")
#: The RealTime QA subset next to a checkout, relative to the working directory.
DEFAULT_EVAL_DIR = Path("../shared/eval/realtimeqa")
#: The eval's cache folder (`newsqa eval` keeps its built dev store there), relative to the
#: working directory: the targets' dev-set index is copied from it, never written.
DEFAULT_EVAL_CACHE = Path("data/eval")
#: Collection sizes (chunks) of the synthetic index that one article is added to.
TARGET_SIZES: tuple[int, ...] = (1_000, 20_000, 100_000)


@dataclass(frozen=True)
class TargetOptions:
    """How big `run_targets` measures: the eval cache holding the dev-set index (copied,
    never written), the synthetic index sizes, and how many questions and repeats."""

    eval_cache: Path = DEFAULT_EVAL_CACHE
    sizes: tuple[int, ...] = TARGET_SIZES
    questions: int | None = None  # None: every dev question
    add_runs: int = 7
    serve_runs: int = 3
    int8_chunks: int = 300


def _run_one(name: str, settings: Settings, eval_dir: Path, scale_sizes: Sequence[int],
             index_limit: int | None, qa_questions: int, qa_distractors: int,
             progress: StageProgress | None, options: TargetOptions) -> dict[str, Any]:
    bench_root = settings.data_dir / "bench"
    if name == "targets":
        return run_targets(settings, eval_dir, options, progress)
    if name == "int8":
        from qa.eval.quantise import run_int8_benchmark

        return run_int8_benchmark(settings, eval_dir=eval_dir, chunks=options.int8_chunks)
    if name == "index":
        corpus = eval_dir / "corpus.jsonl"
        return run_index_benchmark(settings, [settings.seeds_dir], limit=index_limit,
                                   corpus=corpus if corpus.is_file() else None,
                                   work_dir=bench_root / "index")
    if name == "qa":
        return run_qa_benchmark(settings=settings.replace(data_dir=bench_root / "qa",
                                                          chroma_url=""),
                                eval_dir=eval_dir, questions=qa_questions,
                                distractors=qa_distractors)
    return run_scale_benchmark(settings, sizes=scale_sizes, eval_dir=eval_dir,
                               progress=progress)


def run_benchmarks(settings: Settings, *, eval_dir: Path, only: Sequence[str] | None = None,
                   out: Path | None = Path("docs/benchmarks.md"),
                   scale_sizes: Sequence[int] = SCALE_SIZES,
                   index_limit: int | None = 200, qa_questions: int = 40,
                   qa_distractors: int = 200,
                   progress: StageProgress | None = None,
                   options: TargetOptions | None = None, merge: bool = True) -> dict[str, Any]:
    """Run the index, QA and scale benchmarks (or `only` some), write Markdown to `out`,
    and return the figures as JSON-ready data. Scratch stores go under settings.data_dir/bench.

    index: the seeds plus the first `index_limit` articles of `eval_dir`'s corpus; qa:
    `qa_questions` eval questions plus `qa_distractors` articles; scale: the store alone from
    1k to 100k chunks (`scale_sizes`); targets: issue 15's figures (`run_targets`,
    configured by `options`); int8: `options.int8_chunks` chunk texts. `merge`: keep an
    earlier run's figures of benchmarks not run now (False: the page holds this run alone).
    """
    options = options or TargetOptions()
    chosen = list(only or DEFAULT_BENCHMARKS)
    unknown = [name for name in chosen if name not in BENCHMARKS]
    if unknown:
        raise EvalError(f"unknown benchmark(s) {unknown}; choose from {', '.join(BENCHMARKS)}")
    figures: dict[str, Any] = {"started_at": datetime.now(UTC).isoformat(timespec="seconds"),
                               "machine": machine_info(settings), "eval_dir": str(eval_dir)}
    for name in chosen:
        mark = time.perf_counter()
        figures[name] = _run_one(name, settings, eval_dir, scale_sizes, index_limit,
                                 qa_questions, qa_distractors, progress, options)
        figures.setdefault("seconds", {})[name] = time.perf_counter() - mark
    if out is not None:
        write_figures(figures, Path(out), merge=merge)
    return figures


# --- issue 15's figures: each against its floor, measured in the same run ---------------------


def dev_copy(cache: Path, scratch: Path) -> tuple[Path, Path | None]:
    """Copy the eval cache's dev-set index (the largest newsqa-* folder) and its textbook
    store into `scratch`, and return the copies: measuring may write (a keyword index
    brought in step, a reader's state), and the cache must stay as the eval left it."""
    stores = sorted((p for p in cache.glob("newsqa-*") if (p / "manifest.sqlite3").is_file()),
                    key=dir_bytes, reverse=True)
    if not stores:
        raise EvalError(f"no dev-set index (newsqa-*) in {cache}: run `newsqa eval` first "
                        "(it builds one there) or pass the eval cache folder that has one")
    shutil.rmtree(scratch, ignore_errors=True)
    scratch.mkdir(parents=True)
    store = scratch / stores[0].name
    shutil.copytree(stores[0], store, ignore=shutil.ignore_patterns("*.lock"))
    books = sorted(p for p in cache.glob("textbook-*") if p.is_dir())
    if not books:
        return store, None
    textbook = scratch / books[0].name
    shutil.copytree(books[0], textbook)
    return store, textbook


def _synthetic_figures(settings: Settings, eval_dir: Path, options: TargetOptions,
                       embedder: Embedder, material: tuple[list[str], np.ndarray],
                       questions: Sequence[EvalQuestion],
                       progress: StageProgress | None) -> dict[str, Any]:
    """Grow one synthetic index through the indexer to each of `options.sizes` (material
    vectors, no model), add real articles one at a time at each size (model warm), then
    measure retrieval and its floor at the largest size."""
    root = settings.data_dir / "bench" / "targets" / "synthetic"
    shutil.rmtree(root, ignore_errors=True)
    local = settings.replace(data_dir=root / "data", chroma_url="")
    texts, vectors = material
    fake = MaterialEmbedder(settings.embedding_model, vectors)
    quotes = rules_extractor()  # the same extractor throughout: no re-extraction between runs
    drops = drop_records(eval_dir / "corpus.jsonl", options.add_runs)  # the same at each size
    growth, added, paths = [], {}, {}
    for step, size in enumerate(options.sizes):
        growth.append(grow_index(local, root / "corpus", fake, texts, size, step))
        added[str(size)] = add_one_figures(local, embedder, root / "drop", drops,
                                           f"n{size}", quotes)
        if step < len(options.sizes) - 1:  # the largest is measured with its retrieval
            sized, warm = _warm_retriever(local.data_dir, settings, embedder)
            paths[str(size)] = {**path_figures(sized, questions), "warm_up_seconds": warm}
        if progress:
            progress("targets: synthetic index", step + 1, len(options.sizes))
    retriever, warm = _warm_retriever(local.data_dir, settings, embedder)
    return {"material_texts": len(texts), "growth": growth, "add_one": added,
            "paths": paths,
            "quote_extractor": "rules (index.attribution)",
            "retrieval": {**retrieval_figures(retriever, questions, systems=False),
                          "warm_up_seconds": warm}}


def _warm_retriever(data_dir: Path, settings: Settings, embedder: Embedder
                    ) -> tuple[Retriever, float]:
    """The product's retriever over `data_dir`, warm (model already loaded: the time is the
    store's opening and the catalog's first read of every chunk), and that time."""
    started = time.perf_counter()
    retriever = open_retriever(data_dir, settings, embedder)
    return retriever, time.perf_counter() - started


def _eval_json_latencies(path: Path) -> dict[str, Any]:
    """The three systems' retrieval latency as the committed eval report has them."""
    try:
        report = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return {"file": str(path), "started_at": report.get("started_at"),
            **{name: {"p50_ms": scores.get("latency_p50_ms"),
                      "p95_ms": scores.get("latency_p95_ms")}
               for name, scores in (report.get("systems") or {}).items()}}


def run_targets(settings: Settings, eval_dir: Path, options: TargetOptions,
                progress: StageProgress | None = None) -> dict[str, Any]:
    """Issue 15's figures in one process (model warm), each beside its floor: retrieval on
    a copy of the dev-set index (filtered, unfiltered, the eval's three systems), `newsqa
    serve` to first page on that copy, and one article added to a synthetic index of each
    size, plus retrieval at the largest."""
    from index.embedding import get_embedder

    apply_offline_env()
    started = os.getloadavg()
    store_dir, textbook = dev_copy(options.eval_cache,
                                    settings.data_dir / "bench" / "targets" / "dev")
    embedder = get_embedder(settings.embedding_model)
    embedder.warm_up()
    questions = dev_questions(eval_dir)[:options.questions]
    retriever, warm = _warm_retriever(store_dir, settings, embedder)
    dev = {**retrieval_figures(retriever, questions, textbook_dir=textbook),
           "warm_up_seconds": warm}
    if progress:
        progress("targets: dev-set retrieval", 1, 1)
    material = retriever.store.sample_chunks(20_000)
    serve = serve_figures(store_dir, options.serve_runs)
    synthetic = _synthetic_figures(settings, eval_dir, options, embedder, material,
                                   questions, progress)
    return {"eval_cache": str(options.eval_cache), "dev_store": str(store_dir),
            "load_average_start": started, "dev": dev, "serve": serve,
            "synthetic": synthetic, "eval_json": _eval_json_latencies(Path("docs/eval.json")),
            "load_average_end": os.getloadavg()}


def write_figures(figures: Mapping[str, Any], out: Path, *, merge: bool = True) -> None:
    """The Markdown page and its JSON, merged over an earlier run's (so `--only` adds) unless
    `merge` is False."""
    previous = _previous_figures(out) if merge else {}
    merged = {**previous, **figures} if previous else dict(figures)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(benchmarks_markdown(merged), encoding="utf-8")
    merged["target_table"] = target_rows(merged)
    out.with_suffix(".json").write_text(json.dumps(merged, indent=2, default=str) + "\n",
                                        encoding="utf-8")


def _previous_figures(out: Path) -> dict[str, Any]:
    """Figures of an earlier run (the .json beside the Markdown), so `--only` adds to them."""
    try:
        data = json.loads(out.with_suffix(".json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


# --- Markdown ------------------------------------------------------------------------------------


def _fmt(value: Any) -> str:
    if isinstance(value, bool) or value is None:
        return str(value)
    if isinstance(value, float):
        return f"{value:,.3f}" if abs(value) < 10 else f"{value:,.1f}"
    if isinstance(value, int):
        return f"{value:,}"
    if isinstance(value, (list, tuple)):
        return ", ".join(_fmt(v) for v in value)
    return str(value)


def _flat(data: Mapping[str, Any], prefix: str = "") -> list[tuple[str, Any]]:
    rows: list[tuple[str, Any]] = []
    for key, value in data.items():
        name = f"{prefix}{key}"
        if isinstance(value, Mapping):
            rows += _flat(value, f"{name}.")
        else:
            rows.append((name, value))
    return rows


def _mib(value: float) -> str:
    return f"{value / 2**20:,.0f} MiB"


def _md_machine(figures: Mapping[str, Any]) -> list[str]:
    m = figures.get("machine", {})
    return ["# newsqa benchmarks", "",
            "Generated by `qa.eval.bench.run_benchmarks` (`newsqa bench`); figures are "
            "measured, not edited by hand. Retrieval quality is in [eval.md](eval.md).", "",
            f"- Run: {figures.get('started_at')}",
            f"- Machine: {m.get('cpu_cores')} cores ({m.get('processor')}), "
            f"{m.get('ram_gib')} GiB RAM, no GPU; Python {m.get('python')}, torch "
            f"{m.get('torch')} ({m.get('torch_threads')} threads), chromadb "
            f"{m.get('chromadb')}; model {m.get('embedding_model')}",
            f"- Load average when the run started: {_fmt(m.get('load_average'))} (the CPU "
            "is shared: other work was running, so times are upper bounds)", ""]


def _md_table(title: str, intro: str, data: Mapping[str, Any]) -> list[str]:
    return [title, "", intro, "", "| figure | value |", "| --- | ---: |",
            *(f"| {k} | {_fmt(v)} |" for k, v in _flat(data)), ""]


def _md_index(index: Mapping[str, Any]) -> list[str]:
    return _md_table("## Indexing", "Command: `newsqa bench --only index` (`qa.eval.index_bench."
                     "run_index_benchmark`: the seeds plus the first "
                     f"{index.get('corpus_articles', '?')} eval articles, each step in "
                     "a fresh process)", index)


def _md_qa(qa: Mapping[str, Any]) -> list[str]:
    return _md_table("## Answering", "Command: `newsqa bench --only qa` (`qa.eval.qa_bench."
                     f"run_qa_benchmark`: {qa.get('questions', '?')} eval questions "
                     f"over {qa.get('articles', '?')} articles (their gold articles plus "
                     "distractors); model warm, one question at a time, default settings)", qa)


def _md_scale_rows(scale: Mapping[str, Any]) -> list[str]:
    lines = ["## Store scale test (1k to 100k chunks)", "",
             "Command: `newsqa bench --only scale`", "",
             "Measures the STORE, not the embedding model: vectors are inserted directly "
             f"({scale['material']['origin']}; {scale['material']['dimension']} "
             "dimensions) into newsqa's two Chroma collections through `index.store.Store` "
             f"in batches of about {scale.get('batch')} chunks, "
             f"{scale['chunks_per_article']} chunks per article. Embedding the "
             "same chunks with the model would take about 26 chunks/s on this machine "
             "(100k chunks: about 65 minutes). Each build and each serving test runs in "
             "a fresh process; memory is that process's resident set (RSS) and peak. "
             f"Queries: {scale['queries_per_size']} per size, k = {scale['k']} (the "
             "retriever's candidate depth), plain and with a date filter "
             "(`until=2022-06-30`).", "",
             "| chunks | build (median) | chunks/s | disk | build peak RSS | "
             "serving RSS | open + 1st query | query p50 / p95 | filtered p50 / p95 |",
             "| ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |"]
    for row in scale["rows"]:
        lines.append(
            f"| {row['chunks']:,} | {row['build_s_median']:.1f} s "
            f"({row['build_runs']} run{'s' if row['build_runs'] > 1 else ''}) | "
            f"{row['chunks_per_s']:,.0f} | {_mib(row['disk_bytes'])} | "
            f"{_mib(row['build_peak_rss'])} | {_mib(row['serve_rss'])} | "
            f"{row['open_first_query_s']:.2f} s | {row['query_p50_ms']:.1f} / "
            f"{row['query_p95_ms']:.1f} ms | {row['filtered_query_p50_ms']:.1f} / "
            f"{row['filtered_query_p95_ms']:.1f} ms |")
    product = scale.get("product_path")
    if product:
        verdict = (": the store is not the bottleneck next to the model's ~26 chunks/s."
                   if product["chunks_per_s"] > 100 else ".")
        lines += ["", f"The indexer's own write path (`Store.upsert_article`, one article "
                  f"at a time with its stale-chunk check) stores "
                  f"{product['chunks_per_s']:,.0f} chunks/s at {product['chunks']:,} chunks "
                  f"(vectors given, no embedding){verdict}"]
    return lines


def _md_capacity(rows: Sequence[Mapping[str, Any]]) -> list[str]:
    cap = capacity(rows)
    if not cap:
        return []
    comfortable = cap["comfortable_chunks"]
    return ["", "### What one 24 GiB machine serves", "",
            f"- **About {comfortable:,} chunks (~{comfortable // 10:,} articles of "
            "~10 chunks) comfortably**: the tighter of the two limits below. Unfiltered "
            "queries stay fast at every size measured; the limit is date/source-"
            "filtered questions, which every `--since/--until` question (and every "
            "eval question) is.",
            "- Date-filtered queries get slower with the collection: p95 grows about "
            f"{cap['filtered_p95_ms_per_1k_chunks']:.1f} ms per 1,000 chunks (linear "
            "fit over the sizes measured), passing 1 s at about "
            f"{cap['chunks_filtered_p95_under_1s'] or 0:,} chunks; unfiltered p95 stays "
            "under about 100 ms up to 100k chunks.",
            f"- Memory grows by about {cap['serve_rss_bytes_per_chunk'] / 1024:.1f} "
            "KiB per chunk when serving and "
            f"{cap['build_rss_bytes_per_chunk'] / 1024:.1f} KiB per chunk while "
            "building; disk by "
            f"{cap['disk_bytes_per_chunk'] / 1024:.1f} KiB per chunk (slopes between "
            "the smallest and the largest size measured).",
            f"- By memory alone, keeping the store within half the RAM with ~2 GiB "
            f"left for the model and the app leaves room for about "
            f"{cap['chunks_in_budget']:,} chunks. Both limits beyond the largest size "
            "in the table are linear extrapolations, not measurements.",
            *SERVER_MODE_ADVICE]


def _md_int8(int8: Mapping[str, Any]) -> list[str]:
    figures = {key: value for key, value in int8.items() if key != "machine"}
    return _md_table("## int8 encoder (dynamic quantisation)", "Command: `newsqa bench --only "
                     "int8` (`qa.eval.quantise.run_int8_benchmark`: fp32 and int8 encoders in "
                     "one process, alternating rounds over the same RealTime QA chunk texts; "
                     "retrieval loss in [quantisation.md](quantisation.md))", figures)


# --- the targets table -----------------------------------------------------------------------

#: int8's retrieval cost on dev, quoted (not re-measured: re-embedding all 21,552 dev chunks
#: in int8 takes about 11 minutes here); source: docs/quantisation.md.
INT8_DEV_HIT5 = {"fp32": 0.8589, "int8": 0.8528, "source": "docs/quantisation.md"}
#: "Flat in collection size", as this page reads it: adding one article to the largest index
#: takes at most this many times as long as adding it to the smallest.
FLAT_RATIO = 1.25


def _row(figure: str, value: float | None, unit: str, *, floor: float | None = None,
         target: str = "", met: bool | None = None) -> dict[str, Any]:
    ratio = value / floor if value is not None and floor else None
    return {"figure": figure, "value": value, "unit": unit, "floor": floor, "ratio": ratio,
            "target": target, "met": met}


def _retrieval_rows(figures: Mapping[str, Any], where: str, filtered_limit: float,
                    unfiltered_limit: float | None, ratio_limit: float | None
                    ) -> list[dict[str, Any]]:
    floor = figures["floor"]["p50_ms"]
    parts = ", ".join(f"{name} {figures[name]['p50_ms']:.1f}" for name in
                      ("embed", "vectors", "bm25"))
    searches = (f"; vector search = the faster per query of exact numpy "
                f"({figures['vectors_exact']['p50_ms']:.1f}) and the store's HNSW query "
                f"({figures['vectors_store_hnsw']['p50_ms']:.1f})"
                if "vectors_exact" in figures else "")
    filtered, unfiltered = figures["filtered"]["p50_ms"], figures["unfiltered"]["p50_ms"]
    rows = [_row(f"floor at {where}: query embedding + bare vector search + bare BM25, p50 "
                 f"of the per-query sum (p50s: {parts} ms{searches})", floor, "ms"),
            _row(f"retrieval p50, `until=question_date`, {where}", filtered, "ms", floor=floor,
                 target=f"≤ {filtered_limit:g} ms" + (f" and ≤ {ratio_limit:g} × floor"
                                                      if ratio_limit else ""),
                 met=filtered <= filtered_limit and (ratio_limit is None
                                                     or filtered <= ratio_limit * floor))]
    rows.append(_row(f"retrieval p50, unfiltered, {where}", unfiltered, "ms", floor=floor,
                     target=f"≤ {unfiltered_limit:g} ms" if unfiltered_limit else "",
                     met=None if unfiltered_limit is None else unfiltered <= unfiltered_limit))
    return rows


def _path_rows(figures: Mapping[str, Any], where: str) -> list[dict[str, Any]]:
    """The dense search's two paths per filter (qa_bench.path_figures): the product's
    in-memory exact search timed against Chroma's restricted HNSW search as its floor, and
    the top-k lists of each that differ from the exact restricted search (target 0)."""
    paths = figures.get("paths") or {}
    rows = []
    for name, label in (("until", "`until=question_date`"),
                        ("week", "the week up to the question's date")):
        part = paths.get(name)
        if not part:
            continue
        rows.append(_row(
            f"dense search p50, {label} (keeps {100 * part['kept_share_median']:.1f} % of the "
            f"chunks), {where}: in memory (exact) against Chroma's HNSW restricted to the "
            f"allowed ids (floor column); top-{paths['depth']} lists differing from the exact "
            f"restricted search: memory {part['memory_lists_differing']}, Chroma "
            f"{part['store_lists_differing']} of {part['filters']}",
            part["memory_p50_ms"], "ms", floor=part["store_p50_ms"], target="0 lists differ",
            met=part["memory_lists_differing"] == 0))
    return rows


def _warm_up_rows(figures: Mapping[str, Any], where: str) -> list[dict[str, Any]]:
    """The retriever's warm-up with the model loaded: opening the store and the catalog's
    first read of every chunk's text, metadata and embedding (what a first question waits
    for after `newsqa serve` has shown its page)."""
    seconds = figures.get("warm_up_seconds")
    if seconds is None:
        return []
    return [_row(f"retriever warm-up, model loaded (the store opened, every chunk read into "
                 f"the catalog), {where}", seconds, "s")]


def _system_rows(dev: Mapping[str, Any], committed: Mapping[str, Any]) -> list[dict[str, Any]]:
    floor = dev["floor"]["p50_ms"]
    rows = []
    for name, timing in (dev.get("systems") or {}).items():
        before = (committed.get(name) or {}).get("p50_ms")
        note = f"; docs/eval.json: {before:.1f} ms" if before is not None else ""
        rows.append(_row(f"eval ranking p50, {name} (re-measured: depth 10, "
                         f"`until=question_date`{note})", timing["p50_ms"], "ms", floor=floor))
    return rows


def _add_rows(synthetic: Mapping[str, Any]) -> list[dict[str, Any]]:
    added = synthetic["add_one"]
    sizes = sorted(added, key=int)
    rows = []
    for size in sizes:
        figures = added[size]
        last = size == sizes[-1]
        slowest = max(figures.get("all_update_seconds") or [figures["update_seconds"]])
        rows.append(_row(f"add 1 article to {figures['index_chunks']:,} chunks (median of "
                         f"{figures['runs']} articles, {figures['chunks_added']:g} chunks, "
                         f"slowest {slowest:.2f} s; "
                         f"quotes {figures['quote_seconds']:.2f} s of it; pruning it again "
                         f"{figures['prune_seconds']:.2f} s{_store_write(figures)})",
                         figures["update_seconds"], "s", floor=figures["encode_seconds"],
                         target="≤ 2 s" if last else "",
                         met=figures["update_seconds"] <= 2.0 if last else None))
    if len(sizes) > 1:
        small, large = added[sizes[0]]["update_seconds"], added[sizes[-1]]["update_seconds"]
        rows.append(_row(f"add 1 article (the same articles): {int(sizes[-1]):,} over "
                         f"{int(sizes[0]):,} chunks (flatness)",
                         large / small if small else None, "×",
                         target=f"≤ {FLAT_RATIO:g} × (flat)",
                         met=bool(small) and large / small <= FLAT_RATIO))
        own = [added[size]["update_seconds"] - added[size]["store_write_seconds"]
               for size in (sizes[0], sizes[-1]) if "store_write_seconds" in added[size]]
        if len(own) == 2:
            rows.append(_row(f"the same without the time inside Chroma's writes (measured "
                             f"inside the update): {int(sizes[-1]):,} over "
                             f"{int(sizes[0]):,} chunks ({own[1]:.2f} s over {own[0]:.2f} s)",
                             own[1] / own[0] if own[0] > 0 else None, "×"))
    return rows


def _store_write(figures: Mapping[str, Any]) -> str:
    """The add-1 figure's note on Chroma's own part, when measured."""
    seconds = figures.get("store_write_seconds")
    return "" if seconds is None else f"; {seconds:.2f} s of it inside Chroma's writes"


def _other_rows(figures: Mapping[str, Any]) -> list[dict[str, Any]]:
    rows = []
    serve = (figures.get("targets") or {}).get("serve")
    if serve:
        rows.append(_row(f"`newsqa serve` to first page, existing dev index (median of "
                         f"{serve['runs']}; floor: a fresh `import ui.app`)",
                         serve["first_page_seconds"], "s", floor=serve["import_floor_seconds"],
                         target="≤ 6 s", met=serve["first_page_seconds"] <= 6.0))
    index = figures.get("index")
    if index and index.get("build", {}).get("update_without_quotes_seconds") is not None:
        build = index["build"]
        value, floor = build["update_without_quotes_seconds"], index["floor"]["encode_seconds"]
        rows.append(_row(f"index build, {index['chunks']:,} chunks, quote extraction "
                         f"excluded (floor: bare encode of the same texts)", value, "s",
                         floor=floor, target="≤ 1.05 × floor",
                         met=bool(floor) and value <= 1.05 * floor))
        rows.append(_row(f"quote extraction in that build ({build['quotes_extracted']} "
                         "quotes; budgeted by the quotes issue)", build["quote_seconds"], "s",
                         floor=floor))
    int8 = figures.get("int8")
    if int8 and "median_s" in int8.get("int8", {}) and "median_s" in int8.get("fp32", {}):
        loss = 100 * (INT8_DEV_HIT5["fp32"] - INT8_DEV_HIT5["int8"])
        rows.append(_row(f"int8 encoder, {int8['chunks']} chunks (floor: fp32, same run); "
                         f"dev hybrid hit@5 {100 * INT8_DEV_HIT5['fp32']:.1f} → "
                         f"{100 * INT8_DEV_HIT5['int8']:.1f} % (quoted from "
                         f"{INT8_DEV_HIT5['source']})", int8["int8"]["median_s"], "s",
                         floor=int8["fp32"]["median_s"],
                         target="faster than fp32, ≤ 1 point of hit@5",
                         met=int8["int8"]["median_s"] < int8["fp32"]["median_s"] and loss <= 1))
    return rows


def target_rows(figures: Mapping[str, Any]) -> list[dict[str, Any]]:
    """Every figure of issue 15 with its floor, ratio, target and verdict (what is present)."""
    targets = figures.get("targets") or {}
    rows: list[dict[str, Any]] = []
    dev = targets.get("dev")
    if dev:
        where = f"{dev['chunks']:,} chunks (dev index)"
        rows += _retrieval_rows(dev, where, 30, 20, 3)
        rows += _path_rows(dev, where) + _warm_up_rows(dev, where)
        rows += _system_rows(dev, targets.get("eval_json") or {})
    synthetic = targets.get("synthetic")
    if synthetic:
        retrieval = synthetic["retrieval"]
        where = f"{retrieval['chunks']:,} chunks (synthetic)"
        rows += _retrieval_rows(retrieval, where, 60, None, None)
        for _, sized in sorted((synthetic.get("paths") or {}).items(),
                               key=lambda item: int(item[0])):
            rows += _path_rows({"paths": sized}, f"{sized['chunks']:,} chunks (synthetic)")
            rows += _warm_up_rows(sized, f"{sized['chunks']:,} chunks (synthetic)")
        rows += _path_rows(retrieval, where) + _warm_up_rows(retrieval, where)
        rows += _add_rows(synthetic)
    return rows + _other_rows(figures)


def _cell(value: float | None, unit: str) -> str:
    if value is None:
        return ""
    return f"{value:,.1f} {unit}" if unit == "ms" else f"{value:,.2f} {unit}"


def _md_targets(figures: Mapping[str, Any]) -> list[str]:
    rows = target_rows(figures)
    if not rows:
        return []
    targets = figures.get("targets") or {}
    lines = ["## Issue 15's figures against their floors", "",
             "Command: `make bench` (`newsqa bench --make-bench --eval-cache DIR`: "
             "the targets, the index build and int8 in one run). Every time is beside its "
             "floor measured in the same run on the same data; the ratio is time over floor. "
             f"Dev index: a copy of {targets.get('eval_cache', '?')} (never written). "
             "Synthetic index: grown through `index.update` from real chunk texts with "
             "material vectors (no model), one article then added at each size with the "
             "real, warm model. Load average at the start of this part: "
             f"{_fmt(targets.get('load_average_start'))}, at its end: "
             f"{_fmt(targets.get('load_average_end'))}.", "",
             "| figure | measured | floor | ratio | target | verdict |",
             "| --- | ---: | ---: | ---: | --- | --- |"]
    for row in rows:
        unit = row["unit"]
        verdict = "" if row["met"] is None else ("met" if row["met"] else "**missed**")
        ratio = f"{row['ratio']:.2f} ×" if row["ratio"] is not None else ""
        lines.append(f"| {row['figure']} | {_cell(row['value'], unit)} | "
                     f"{_cell(row['floor'], unit if unit != '×' else 's')} | {ratio} | "
                     f"{row['target']} | {verdict} |")
    return [*lines, ""]


def benchmarks_markdown(figures: Mapping[str, Any]) -> str:
    """docs/benchmarks.md from the figures of `run_benchmarks`."""
    lines = [*_md_machine(figures), *_md_targets(figures)]
    if "index" in figures:
        lines += _md_index(figures["index"])
    if "qa" in figures:
        lines += _md_qa(figures["qa"])
    scale = figures.get("scale")
    if scale:
        lines += [*_md_scale_rows(scale), *_md_capacity(scale["rows"])]
    if "int8" in figures:
        lines += _md_int8(figures["int8"])
    return "\n".join(lines) + "\n"


SERVER_MODE_ADVICE = [
    "",
    "### When to switch to the Chroma server (NEWSQA_CHROMA_URL)",
    "",
    "- The embedded store (the default) is one process's files: the web chat and `newsqa index` "
    "must not write to it at the same time from different processes. Run a Chroma server and "
    "point every newsqa process at it with `NEWSQA_CHROMA_URL=http://host:8000` as soon as "
    "indexing has to run while the chat is serving, or more than one chat process serves "
    "the same collection.",
    "- Also switch when the collection grows past the comfortable size above on the chat "
    "machine: the server keeps the vector index and the filtered scans on its own machine "
    "(give it the memory and cores; the scan cost per filtered query is the same engine's), or "
    "when the store should live on another machine than the chat.",
]


def parse_sizes(text: str) -> tuple[int, ...]:
    """"1000,20000,100000" -> (1000, 20000, 100000); EvalError unless positive and ascending."""
    try:
        sizes = tuple(int(part) for part in text.split(",") if part.strip())
    except ValueError:
        raise EvalError(f"sizes must be comma-separated integers: {text!r}") from None
    if not sizes or min(sizes) < 1 or list(sizes) != sorted(sizes):
        raise EvalError(f"sizes must be positive and ascending: {text!r}")
    return sizes

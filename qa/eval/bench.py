"""`newsqa bench`: run the index, QA and store-scale benchmarks and write docs/benchmarks.md.

Each benchmark lives in its own module (index_bench, qa_bench, scale); this one orchestrates
them, records the machine, and renders the figures as Markdown (with the JSON beside it).
"""

from __future__ import annotations

import json
import time
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from index.settings import Settings
from qa.errors import EvalError
from qa.eval.index_bench import run_index_benchmark
from qa.eval.machine import machine_info
from qa.eval.peers import StageProgress
from qa.eval.qa_bench import run_qa_benchmark
from qa.eval.scale import SCALE_SIZES, capacity, run_scale_benchmark

BENCHMARKS: tuple[str, ...] = ("index", "qa", "scale", "int8")
#: The RealTime QA subset next to a checkout, relative to the working directory.
DEFAULT_EVAL_DIR = Path("../shared/eval/realtimeqa")


def _run_one(name: str, settings: Settings, eval_dir: Path, scale_sizes: Sequence[int],
             index_limit: int | None, qa_questions: int, qa_distractors: int,
             progress: StageProgress | None) -> dict[str, Any]:
    bench_root = settings.data_dir / "bench"
    if name == "int8":
        from qa.eval.quantise import run_int8_benchmark

        return run_int8_benchmark(settings, eval_dir=eval_dir)
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
                   progress: StageProgress | None = None) -> dict[str, Any]:
    """Run the index, QA and scale benchmarks (or `only` some), write Markdown to `out`,
    and return the figures as JSON-ready data. Scratch stores go under settings.data_dir/bench.

    index: the seeds plus the first `index_limit` articles of `eval_dir`'s corpus; qa:
    `qa_questions` eval questions plus `qa_distractors` articles; scale: the store alone from
    1k to 100k chunks (`scale_sizes`).
    """
    chosen = list(only or BENCHMARKS)
    unknown = [name for name in chosen if name not in BENCHMARKS]
    if unknown:
        raise EvalError(f"unknown benchmark(s) {unknown}; choose from {', '.join(BENCHMARKS)}")
    figures: dict[str, Any] = {"started_at": datetime.now(UTC).isoformat(timespec="seconds"),
                               "machine": machine_info(settings), "eval_dir": str(eval_dir)}
    for name in chosen:
        mark = time.perf_counter()
        figures[name] = _run_one(name, settings, eval_dir, scale_sizes, index_limit,
                                 qa_questions, qa_distractors, progress)
        figures.setdefault("seconds", {})[name] = time.perf_counter() - mark
    if out is not None:
        write_figures(figures, Path(out))
    return figures


def write_figures(figures: Mapping[str, Any], out: Path) -> None:
    """The Markdown page and its JSON, merged over an earlier run's (so `--only` adds)."""
    previous = _previous_figures(out)
    merged = {**previous, **figures} if previous else dict(figures)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(benchmarks_markdown(merged), encoding="utf-8")
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


def benchmarks_markdown(figures: Mapping[str, Any]) -> str:
    """docs/benchmarks.md from the figures of `run_benchmarks`."""
    lines = _md_machine(figures)
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

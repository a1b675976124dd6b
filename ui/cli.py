"""The `newsqa` command: a thin layer over the Python API (index, qa, ui.app).

Environment variables (NEWSQA_*) and flags are read here, at the edge, into one Settings.
With --json a command prints exactly one JSON document on stdout; progress and logs go to stderr.
"""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import click
from tqdm import tqdm

from index import build
from index.errors import NewsQAError
from index.settings import Settings, apply_offline_env

# Imported inside the commands that need them, to keep `newsqa --help`, `index` and `stats`
# fast: qa.api (LangChain, about a second), ui.app (Gradio, about three seconds), and the
# measurement code (qa.eval), which no product path may import at module level.

EXAMPLES = {
    "main": "  newsqa index articles/\n  newsqa ask \"What did Trenta say about intervention?\"\n"
            "  newsqa serve --port 7860",
    "index": "  newsqa index articles/ feeds/*.xml\n  newsqa index seeds/ --json\n"
             "  newsqa index articles/ --rebuild",
    "ask": "  newsqa ask \"What did Trenta say about intervention?\"\n"
           "  newsqa ask \"Who met Haftar?\" --source Xinhua --since 2019-01-01 --json",
    "quotes": "  newsqa quotes\n  newsqa quotes --speaker Trenta --topic intervention\n"
              "  newsqa quotes --speaker \"Giuseppe Conte\" --since 2019-04-01 --json",
    "serve": "  newsqa serve\n  NEWSQA_AUTH=desk:secret newsqa serve --host 0.0.0.0 --port 8080",
    "stats": "  newsqa stats\n  newsqa stats --json",
    "eval": "  newsqa eval --corpus ../shared/eval/realtimeqa/corpus.jsonl \\\n"
            "      --queries ../shared/eval/realtimeqa/queries_dev.jsonl --sample 20",
    "bench": "  newsqa bench --make-bench --eval-cache data/eval\n"
             "  newsqa bench --only index --limit 200",
    "train": "  newsqa train reader\n  newsqa train reader --limit 2 --out /tmp/reader\n"
             "  newsqa train quotes\n  newsqa train quotes --limit 3 --out /tmp/quotes",
}


def _epilog(name: str) -> str:
    return "\b\nExamples:\n" + EXAMPLES[name]


class NewsQAGroup(click.Group):
    """Turns newsqa's own errors into one clear line on stderr and exit status 2."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except NewsQAError as exc:
            click.echo(f"newsqa: error: {exc}", err=True)
            sys.exit(2)
        except KeyboardInterrupt:
            click.echo("newsqa: interrupted", err=True)
            sys.exit(130)


def _emit_json(document: Any) -> None:
    click.echo(json.dumps(document, ensure_ascii=False, indent=2, default=str))


@contextmanager
def _progress(quiet: bool) -> Iterator[Callable[[str, int, int], None] | None]:
    """A progress callback (stage, done, total) drawing tqdm bars on stderr, or None."""
    if quiet:
        yield None
        return
    bars: dict[str, Any] = {}

    def update(stage: str, done: int, total: int) -> None:
        bar = bars.get(stage)
        if bar is None:
            bar = bars[stage] = tqdm(total=total, desc=stage, unit="", file=sys.stderr,
                                     leave=False, dynamic_ncols=True, disable=None)
        if bar.total != total:
            bar.total = total
        bar.n = done
        bar.refresh()

    try:
        yield update
    finally:
        for bar in bars.values():
            bar.close()


def _settings(ctx: click.Context, **overrides: Any) -> Settings:
    base: Settings = ctx.obj
    return base.replace(**overrides)


@click.group(cls=NewsQAGroup, epilog=_epilog("main"),
             context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
@click.option("--data-dir", type=click.Path(file_okay=False, path_type=Path),
              help="Folder for everything newsqa writes [env NEWSQA_DATA_DIR; default ./data].")
@click.option("--chroma-url", help="Use a Chroma server (http://host:port) instead of the "
              "embedded store [env NEWSQA_CHROMA_URL].")
@click.option("--collection", help="Chroma collection name [env NEWSQA_COLLECTION].")
@click.option("--model", "embedding_model",
              help="Embedding model: bundled all-MiniLM-L6-v2 or a local path "
                   "[env NEWSQA_EMBEDDING_MODEL].")
@click.version_option(package_name="newsqa")
@click.pass_context
def cli(ctx: click.Context, data_dir: Path | None, chroma_url: str | None,
        collection: str | None, embedding_model: str | None) -> None:
    """Ask questions of your news articles and get answers quoted from them, with citations.

    Every statement in an answer carries a citation [n] to an article and the exact span quoted.
    When the indexed articles do not contain the answer, newsqa says so.
    """
    apply_offline_env()
    ctx.obj = Settings.from_env(os.environ, data_dir=data_dir, chroma_url=chroma_url,
                                collection=collection, embedding_model=embedding_model)


@cli.command(epilog=_epilog("index"))
@click.argument("paths", nargs=-1, required=True)
@click.option("--rebuild", is_flag=True, help="Drop the store and re-embed everything "
              "(needed after changing the embedding model).")
@click.option("--prune/--no-prune", default=None,
              help="Remove articles whose files are gone. Default: prune inside the folders "
                   "given in this run only.")
@click.option("--strict", is_flag=True, help="Exit non-zero if any file is skipped.")
@click.option("--quiet", "-q", is_flag=True, help="No progress bars.")
@click.option("--json", "as_json", is_flag=True, help="Print the report as JSON.")
@click.pass_context
def index(ctx: click.Context, paths: Sequence[str], rebuild: bool, prune: bool | None,
          strict: bool, quiet: bool, as_json: bool) -> None:
    """Index article files, folders or globs (txt, md, json, jsonl, html, rss/atom).

    Re-running is incremental: unchanged files are skipped without loading the model, changed
    ones are replaced, and bad files are reported and skipped without touching what is indexed.
    """
    settings = _settings(ctx)
    run = build.rebuild if rebuild else build.update
    with _progress(quiet) as progress:
        report = run(list(paths), settings, prune=prune, strict=strict, progress=progress)
    if as_json:
        _emit_json(report.to_dict())
    else:
        for error in report.errors:
            click.echo(f"skipped {error['path']}: {error['reason']}", err=True)
        for duplicate in report.duplicate_names:
            click.echo(f"duplicate {duplicate['path']}: {duplicate['reason']}", err=True)
        click.echo(report.summary())
    if not report.ok or (strict and report.skipped):
        sys.exit(1)


@cli.command(epilog=_epilog("ask"))
@click.argument("question")
@click.option("--k", "top_k", type=click.IntRange(1, 50), help="Passages to retrieve.")
@click.option("--since", help="Only articles published on or after this date (YYYY-MM-DD).")
@click.option("--until", help="Only articles published on or before this date (YYYY-MM-DD).")
@click.option("--source", "sources", multiple=True, help="Only this source (repeatable).")
@click.option("--llm", help="Answer with a chat model: local:smollm2, ollama:MODEL, "
              "openai:MODEL [env NEWSQA_LLM].")
@click.option("--json", "as_json", is_flag=True, help="Print the Answer as JSON.")
@click.pass_context
def ask(ctx: click.Context, question: str, top_k: int | None, since: str | None,
        until: str | None, sources: Sequence[str], llm: str | None, as_json: bool) -> None:
    """Answer QUESTION from the indexed articles, quoting and citing them."""
    from qa.api import NewsQA  # LangChain: only for the commands that answer
    from ui.render import cli_quote, describe_searched

    qa = NewsQA.from_settings(_settings(ctx, llm=llm))
    answer = qa.ask(question, k=top_k, since=since, until=until, sources=list(sources) or None)
    if as_json:
        _emit_json(answer.to_dict())
        return
    click.echo(answer.text)
    if answer.searched:
        click.echo(f"({describe_searched(answer)})")
    if answer.citations:
        click.echo("\nSources:")
    for citation in answer.citations:
        meta = citation.article
        details = ", ".join(x for x in (meta.source, meta.published, meta.url) if x)
        click.echo(f"[{citation.number}] {meta.title or meta.id}" +
                   (f" ({details})" if details else ""))
        click.echo(f"    \"{cli_quote(citation, tty=sys.stdout.isatty())}\"  "
                   f"[chars {citation.start}-{citation.end}]")
    for warning in answer.warnings:
        click.echo(f"warning: {warning}", err=True)


@cli.command(epilog=_epilog("quotes"))
@click.option("--speaker", help="Quotes of this person or outlet (any form of the name).")
@click.option("--topic", help="Rank the quotes by closeness to this topic.")
@click.option("--since", help="Only articles published on or after this date (YYYY-MM-DD).")
@click.option("--until", help="Only articles published on or before this date (YYYY-MM-DD).")
@click.option("--source", "sources", multiple=True, help="Only this source (repeatable).")
@click.option("--limit", type=click.IntRange(1), help="Show at most N quotes.")
@click.option("--speakers", "list_speakers", is_flag=True,
              help="List the speakers quoted (the default without --speaker and --topic).")
@click.option("--json", "as_json", is_flag=True, help="Print the quotes or speakers as JSON.")
@click.pass_context
def quotes(ctx: click.Context, speaker: str | None, topic: str | None, since: str | None,
           until: str | None, sources: Sequence[str], limit: int | None, list_speakers: bool,
           as_json: bool) -> None:
    """Who said what: the quotes stored with the index, or the speakers quoted."""
    from qa.api import NewsQA  # LangChain: only for the commands that answer

    qa = NewsQA.from_settings(_settings(ctx))
    chosen = list(sources) or None
    if list_speakers or not (speaker or topic):
        found = qa.speakers(since=since, until=until, sources=chosen)
        if as_json:
            _emit_json({"speakers": [s.to_dict() for s in found]})
            return
        _echo_speakers(found)
        return
    listed = qa.quotes(speaker=speaker, topic=topic, since=since, until=until,
                       sources=chosen, limit=limit)
    rows = [(quote, qa.speaker_of(quote), qa.quote_index.article(quote.article_id))
            for quote in listed]
    if as_json:
        _emit_json({"quotes": [{**quote.to_dict(), "speaker_merged": name,
                                "article": meta.to_dict() if meta else None}
                               for quote, name, meta in rows]})
        return
    _echo_quotes(rows)


def _echo_speakers(found: Sequence[Any]) -> None:
    """One line per speaker: name, counts, date range, other forms."""
    if not found:
        click.echo("No quotes in the index (index articles first: newsqa index PATH).")
    for person in found:
        dates = "..".join(dict.fromkeys(d for d in (person.first, person.last) if d))
        also = f"; also {', '.join(person.aliases)}" if person.aliases else ""
        click.echo(f"{person.name}: {person.quote_count} quote(s) in {person.article_count} "
                   f"article(s){', ' + dates if dates else ''}{also}")


def _echo_quotes(rows: Sequence[tuple[Any, str, Any]]) -> None:
    """Each quote: date, source, speaker and cue, the verbatim content, its article."""
    if not rows:
        click.echo("No quotes found.")
    for quote, name, meta in rows:
        head = " ".join(x for x in (quote.published[:10], quote.source) if x)
        how = " ".join(x for x in (quote.cue, quote.venue) if x)
        click.echo(f"{head} - {name or quote.speaker or 'unknown speaker'}"
                   + (f" ({how})" if how else "") + ":")
        click.echo(f"    \"{quote.content}\"")
        where = ", ".join(x for x in ((meta.title or meta.id) if meta else quote.article_id,
                                      meta.url if meta else "") if x)
        click.echo(f"    {where} [chars {quote.start}-{quote.end}]")


@cli.command(epilog=_epilog("serve"))
@click.option("--host", help="Address to bind [env NEWSQA_HOST; default 127.0.0.1].")
@click.option("--port", type=click.IntRange(0, 65535), help="Port [env NEWSQA_PORT; 7860].")
@click.option("--auth", help="USER:PASS required to open the chat [env NEWSQA_AUTH].")
@click.option("--llm", help="Answer with a chat model: local:smollm2, ollama:MODEL, "
              "openai:MODEL [env NEWSQA_LLM].")
@click.pass_context
def serve(ctx: click.Context, host: str | None, port: int | None, auth: str | None,
          llm: str | None) -> None:
    """Serve the web chat (indexes seeds/ on first start when the store is empty).

    A taken port, a first start without the articles folder, or a model that cannot load
    is one line on stderr and exit status 2, like every newsqa error.
    """
    from qa.api import NewsQA  # LangChain and Gradio: only for the command that serves
    from ui.app import serve as serve_app

    settings = _settings(ctx, host=host, port=port, auth=auth, llm=llm)
    serve_app(NewsQA.from_settings(settings), settings)


@cli.command(epilog=_epilog("stats"))
@click.option("--json", "as_json", is_flag=True, help="Print the statistics as JSON.")
@click.pass_context
def stats(ctx: click.Context, as_json: bool) -> None:
    """Show what is indexed: articles, chunks, sources, date range, model, store location."""
    figures = build.stats(_settings(ctx))
    if as_json:
        _emit_json(figures)
        return
    width = max(len(k) for k in figures)
    for key, value in figures.items():
        if isinstance(value, list):
            value = ", ".join(map(str, value)) or "-"
        click.echo(f"{key:<{width}}  {value}")


@cli.command("eval", epilog=_epilog("eval"))
@click.option("--corpus", type=click.Path(exists=True, dir_okay=False, path_type=Path),
              required=True, help="Articles, JSONL (id, title, source, published_at, url, body).")
@click.option("--queries", type=click.Path(exists=True, dir_okay=False, path_type=Path),
              required=True, help="Questions, JSONL (id, query, answer, question_date, evidence).")
@click.option("--sample", type=click.IntRange(1), help="Evaluate N sampled questions on their "
              "gold articles plus sampled distractors (quick run).")
@click.option("--limit", type=click.IntRange(1), help="Evaluate only the first N questions.")
@click.option("--seed", type=int, default=0, show_default=True, help="Sampling seed.")
@click.option("--report-dir", type=click.Path(file_okay=False, path_type=Path),
              default=Path("docs"), show_default=True,
              help="Where the Markdown report and its chart go.")
@click.option("--time-words", is_flag=True, help="Let time words (\"this week\") narrow the "
              "dates searched, counted from each question_date.")
@click.option("--ablation", is_flag=True, help="Also answer every question with each variant "
              "of the answerer (extractive, no refusal, no gate, no short lead) and report "
              "the confidence curve (ECE, risk-coverage) from the no-refusal variant.")
@click.option("--quiet", "-q", is_flag=True, help="No progress bars.")
@click.option("--json", "as_json", is_flag=True, help="Print the report as JSON.")
@click.pass_context
def evaluate(ctx: click.Context, corpus: Path, queries: Path, sample: int | None,
             limit: int | None, seed: int, report_dir: Path, time_words: bool, ablation: bool,
             quiet: bool, as_json: bool) -> None:
    """Measure retrieval, answers (support, short answers, confidence) and refusals against
    newsqa's peers on a QA set."""
    from qa.eval.ablation import ablation_variants
    from qa.eval.report import render_table
    from qa.eval.run import run_eval

    with _progress(quiet) as progress:
        report = run_eval(corpus, queries, _settings(ctx), sample=sample, limit=limit,
                          seed=seed, progress=progress, report_dir=report_dir,
                          time_words=time_words,
                          ablation=ablation_variants() if ablation else ())
    if as_json:
        _emit_json(report.to_dict())
    else:
        click.echo(render_table(report))


@cli.command("eval-llm", epilog="\b\nExamples:\n  newsqa eval-llm\n"
             "  cp -r data/eval/newsqa-HASH /tmp/store && newsqa eval-llm --eval-store "
             "/tmp/store --corpus ../shared/eval/realtimeqa/corpus.jsonl \\\n"
             "      --queries ../shared/eval/realtimeqa/queries_dev.jsonl --sample 30")
@click.option("--llm", "spec", default="local:smollm2", show_default=True,
              help="The chat model measured.")
@click.option("--eval-store", type=click.Path(exists=True, file_okay=False, path_type=Path),
              help="A COPY of the store `newsqa eval` built (data/eval/newsqa-*) for the dev "
              "questions; without it only the seed questions are asked.")
@click.option("--corpus", type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help="The corpus that store was built from (JSONL).")
@click.option("--queries", type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help="Dev questions (JSONL).")
@click.option("--sample", type=click.IntRange(1), default=30, show_default=True,
              help="Dev questions sampled (answerable ones, fixed seed).")
@click.option("--seed", type=int, default=0, show_default=True, help="Sampling seed.")
@click.option("--max-new-tokens", type=click.IntRange(1), default=96, show_default=True,
              help="Reply cap of a local model.")
@click.option("--out", type=click.Path(file_okay=False, path_type=Path),
              default=Path("test-output/llm-eval"), show_default=True,
              help="Where the figures (JSON) and the generated sentences (JSONL) go.")
@click.option("--quiet", "-q", is_flag=True, help="No progress bars.")
@click.option("--json", "as_json", is_flag=True, help="Print the figures as JSON.")
@click.pass_context
def eval_llm(ctx: click.Context, spec: str, eval_store: Path | None, corpus: Path | None,
             queries: Path | None, sample: int, seed: int, max_new_tokens: int, out: Path,
             quiet: bool, as_json: bool) -> None:
    """Measure a chat model's checked answers beside the offline answerer's (docs/llm.md)."""
    from qa.eval.llm_measure import render_table, run_llm_measure, write_outputs

    with _progress(quiet) as progress:
        run = run_llm_measure(_settings(ctx), spec=spec, eval_store=eval_store, corpus=corpus,
                              queries=queries, sample=sample, seed=seed,
                              max_new_tokens=max_new_tokens, work_dir=out, progress=progress)
    write_outputs(run, out)
    if as_json:
        _emit_json(run.to_dict())
    else:
        click.echo(render_table(run))


def _quote_extractors(which: str) -> dict[str, Any]:
    """The extractors `eval-quotes` scores: the rules (and their core-cue ablation), the
    product's tagger, or both."""
    from qa.eval.quotes_eval import PRODUCT, product_extractor, rule_extractors

    apply_offline_env()
    rules = rule_extractors() if which in ("rules", "both") else {}
    return {**rules, **({PRODUCT: product_extractor()} if which in ("tagger", "both") else {})}


@cli.command("eval-quotes", epilog="\b\nExamples:\n  newsqa eval-quotes --data "
             "../shared/eval/polnear/dev.jsonl --out docs/quotes-eval.md\n"
             "  newsqa eval-quotes --data ../shared/eval/polnear/train.jsonl --json")
@click.option("--data", type=click.Path(exists=True, dir_okay=False, path_type=Path),
              required=True, help="PolNeAR articles with attributions (JSONL).")
@click.option("--out", type=click.Path(dir_okay=False, path_type=Path),
              help="Write the Markdown report here (e.g. docs/quotes-eval.md).")
@click.option("--limit", type=click.IntRange(1), help="Score only the first N articles.")
@click.option("--extractor", type=click.Choice(["both", "rules", "tagger"]), default="both",
              show_default=True, help="The rules of index.attribution, the learned tagger "
              "the index uses on punctuated text, or both in one report.")
@click.option("--json", "as_json", is_flag=True, help="Print the figures as JSON.")
def eval_quotes_command(data: Path, out: Path | None, limit: int | None, extractor: str,
                        as_json: bool) -> None:
    """Measure who-said-what extraction on PolNeAR: content, direct quotes, speakers."""
    from qa.eval.quotes_eval import run_quotes_eval

    command = ("newsqa eval-quotes --data " + str(data) + (f" --out {out}" if out else "")
               + (f" --extractor {extractor}" if extractor != "both" else ""))
    report = run_quotes_eval(data, out=out, limit=limit, command=command,
                             extractors=_quote_extractors(extractor))
    if as_json:
        _emit_json(report)
        return
    for label, figures in report["results"].items():
        click.echo(f"{label:<24} content overlap F1 {100 * figures['all']['overlap_f1']:5.1f}"
                   f"  direct {100 * figures['direct']['overlap_f1']:5.1f}"
                   f"  speaker {100 * figures['all']['speaker_match']:5.1f}")
    for label, res in report["resolution"].items():
        click.echo(f"{label:<24} resolution {100 * res['share_correct']:5.1f}"
                   f" (unjudged {res['unjudged']})")
    if out:
        click.echo(f"wrote {out}")


@cli.command(epilog=_epilog("bench"))
@click.option("--only", type=click.Choice(["index", "qa", "scale", "int8", "targets"]),
              multiple=True, help="Run only these benchmarks (repeatable).")
@click.option("--make-bench", is_flag=True,
              help="What `make bench` runs: issue 15's targets, the index build and int8; "
                   "the page then holds this run alone.")
@click.option("--out", type=click.Path(dir_okay=False, path_type=Path),
              default=Path("docs/benchmarks.md"), show_default=True,
              help="Markdown file the figures are written to.")
@click.option("--limit", type=click.IntRange(1), default=200, show_default=True,
              help="Eval articles indexed by the index benchmark.")
@click.option("--eval-dir", type=click.Path(file_okay=False, path_type=Path),
              default=Path("../shared/eval/realtimeqa"), show_default=True,
              help="The RealTime QA subset (corpus.jsonl, queries_dev.jsonl).")
@click.option("--eval-cache", type=click.Path(file_okay=False, path_type=Path),
              default=Path("data/eval"), show_default=True,
              help="The eval cache holding the dev-set index newsqa-* (copied, never written).")
@click.option("--sizes", default="1000,20000,100000", show_default=True,
              help="Synthetic index sizes in chunks for the targets, ascending.")
@click.option("--questions", type=click.IntRange(1), help="Dev questions used [default: all].")
@click.option("--quiet", "-q", is_flag=True, help="No progress bars.")
@click.option("--json", "as_json", is_flag=True, help="Print the figures as JSON.")
@click.pass_context
def bench(ctx: click.Context, only: Sequence[str], make_bench: bool, out: Path, limit: int,
          eval_dir: Path, eval_cache: Path, sizes: str, questions: int | None, quiet: bool,
          as_json: bool) -> None:
    """Benchmark indexing, retrieval and answering speed and memory; writes docs/benchmarks.md."""
    from qa.eval.bench import MAKE_BENCH, TargetOptions, parse_sizes, run_benchmarks

    options = TargetOptions(eval_cache=eval_cache, sizes=parse_sizes(sizes),
                            questions=questions)
    chosen = list(MAKE_BENCH) if make_bench else (list(only) or None)
    index_limit = 100 if make_bench else limit
    with _progress(quiet) as progress:
        figures = run_benchmarks(_settings(ctx), eval_dir=eval_dir, only=chosen, out=out,
                                 index_limit=index_limit, progress=progress, options=options,
                                 merge=not make_bench)
    if as_json:
        _emit_json(figures)
    else:
        click.echo(f"wrote {out}")


@cli.group(epilog=_epilog("train"))
def train() -> None:
    """Train newsqa's own small weights (RealTime QA training weeks, PolNeAR train)."""


@train.command("reader", epilog=_epilog("train"))
@click.option("--train-dir", type=click.Path(file_okay=False, path_type=Path),
              default=Path("../shared/eval/realtimeqa-train"), show_default=True,
              help="The training set (corpus.jsonl, queries_train.jsonl); never the dev set.")
@click.option("--out", type=click.Path(file_okay=False, path_type=Path),
              help="Folder for the weights [default: newsqa's qa/weights/reader].")
@click.option("--limit", type=click.IntRange(1), help="Tiny run: N questions, one step.")
@click.option("--variant", "variants", type=click.Choice(["lora", "frozen"]), multiple=True,
              help="Variants to train and compare (repeatable) [default: both].")
@click.option("--quiet", "-q", is_flag=True, help="No progress bars.")
@click.option("--json", "as_json", is_flag=True, help="Print the metadata as JSON.")
def train_reader_command(train_dir: Path, out: Path | None, limit: int | None,
                         variants: Sequence[str], quiet: bool, as_json: bool) -> None:
    """Train the cross-encoder reader; held-out figures and sha256 go beside the weights."""
    from qa.eval.train_reader import train_reader
    from qa.reader import WEIGHTS_DIR

    apply_offline_env()
    with _progress(quiet) as progress:
        metadata = train_reader(train_dir, out or WEIGHTS_DIR, limit=limit,
                                variants=tuple(variants) or ("lora", "frozen"),
                                progress=progress)
    if as_json:
        _emit_json(metadata)
        return
    for name, figures in metadata["held_out"].items():
        short = (f"  short answer EM {100 * figures['short_em']:5.1f} % "
                 f"F1 {100 * figures['short_f1']:5.1f} %" if "short_em" in figures else "")
        click.echo(f"{name:<11} held-out hit@1 {100 * figures['hit_at_1']:5.1f} %{short}")
    report = metadata["calibration_report"]
    click.echo(f"confidence: ECE {report['ece_leave_one_week_out']:.3f} (leave one week out), "
               f"threshold {metadata['calibration']['threshold']:.3f} refuses "
               f"{100 * report['false_refusals']:.0f} % answerable, "
               f"{100 * report['unanswerable_refused']:.0f} % unanswerable")
    answerer = "with" if metadata.get("answerer_kept") else "without"
    click.echo(f"chose {metadata['chosen']} {answerer} the answerer; wrote {out or WEIGHTS_DIR} "
               f"(sha256 {metadata['weights_sha256'][:12]})")


@train.command("quotes", epilog=_epilog("train"))
@click.option("--data", type=click.Path(dir_okay=False, path_type=Path),
              default=Path("../shared/eval/polnear/train.jsonl"), show_default=True,
              help="PolNeAR training articles; never dev.jsonl.")
@click.option("--out", type=click.Path(file_okay=False, path_type=Path),
              help="Folder for the weights [default: newsqa's index/weights/quotes].")
@click.option("--limit", type=click.IntRange(1), help="Tiny run: N articles, one step.")
@click.option("--quiet", "-q", is_flag=True, help="No progress bars.")
@click.option("--json", "as_json", is_flag=True, help="Print the metadata as JSON.")
def train_quotes_command(data: Path, out: Path | None, limit: int | None, quiet: bool,
                         as_json: bool) -> None:
    """Train the attribution tagger's head on MiniLM token states; figures beside the weights."""
    from index.quote_tagger import WEIGHTS_DIR as QUOTE_WEIGHTS
    from qa.eval.train_quotes import train_quotes

    apply_offline_env()
    with _progress(quiet) as progress:
        metadata = train_quotes(data, out or QUOTE_WEIGHTS, limit=limit, progress=progress)
    if as_json:
        _emit_json(metadata)
        return
    held = metadata["held_out"]
    click.echo(f"held-out content overlap F1 {100 * held['content_overlap_f1']:5.1f} %, "
               f"speaker {100 * held['speaker_match']:5.1f} % (epoch {metadata['chosen_epoch']})")
    click.echo(f"wrote {out or QUOTE_WEIGHTS} (sha256 {metadata['weights_sha256'][:12]}) "
               f"in {metadata['total_seconds']:.0f} s")


def main(argv: Sequence[str] | None = None) -> None:
    """Console-script entry point."""
    cli.main(args=list(argv) if argv is not None else None, prog_name="newsqa")


if __name__ == "__main__":
    main()

"""`newsqa eval-quotes`: any quote extractor scored on PolNeAR, written to docs/quotes-eval.md.

An extractor is any `Callable[[Article], Sequence[Quote]]`; one report holds the rules of
index.attribution and the product's extractor (the learned tagger on punctuated copy, from
index.quotes), whose figures the targets are read off. Metrics, as in the quote-attribution
literature (Citron on PARC 3.0):
- content P/R/F1, exact (same word tokens as a gold content) and token overlap (each prediction
  scored against the gold content it overlaps most, each gold against the prediction that
  overlaps it most, by the share of its word tokens covered);
- direct quotes (gold contents that start with a quotation mark; a prediction marked direct
  whose best overlap is an indirect content counts as a false positive);
- speaker match for matched contents: the predicted speaker mention overlaps the gold source
  span; a gold without a source is right only when no speaker is predicted;
- resolution: hand judgements of resolved names for sampled pronoun / description sources.
"""

from __future__ import annotations

import bisect
import json
import random
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from index.records import Article, Quote, Span
from index.text import wordset
from qa.errors import EvalError

Extractor = Callable[[Article], Sequence[Quote]]
_WORD = re.compile(r"\w+")
_QUOTE_MARKS = "\"“”'‘’«»"
RESOLUTION_FILE = Path(__file__).with_name("quotes_resolution.json")
RESOLUTION_SEED = 13
RESOLUTION_SAMPLE = 100
ANCHORS = (
    ("Citron (BBC News Labs), PARC 3.0 test", "content F1 59.3 exact / 83.3 overlap; "
     "source F1 82.0 exact / 85.3 overlap"),
    ("Gender Gap Tracker (SFU)", "quote F1 83.7; speaker match 86.5 %"),
)


@dataclass(frozen=True)
class GoldAttribution:
    """One annotated attribution: source, cue and content spans into the article text."""

    id: str
    content: tuple[Span, ...]
    source: tuple[Span, ...]
    cue: tuple[Span, ...]


@dataclass(frozen=True)
class GoldArticle:
    article: Article
    attributions: tuple[GoldAttribution, ...]
    publisher: str = ""


def _spans(value: Any) -> tuple[Span, ...]:
    """PolNeAR [start, end] pairs as sorted span tuples."""
    return tuple(sorted((int(a), int(b)) for a, b in value or ()))


def load_polnear(path: Path, limit: int | None = None) -> list[GoldArticle]:
    """PolNeAR articles (README in ../shared/eval/polnear) with their attributions."""
    out: list[GoldArticle] = []
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except OSError as exc:
        raise EvalError(f"{path}: cannot read: {exc.strerror}") from exc
    for number, line in enumerate(lines, 1):
        if not line.strip():
            continue
        if limit is not None and len(out) >= limit:
            break
        try:
            record = json.loads(line)
            article = Article(title=record.get("title") or "", body=record["text"],
                              source=record.get("publisher") or "",
                              author=record.get("author") or "",
                              published=record.get("published") or "", path=record["id"])
            gold = tuple(GoldAttribution(f"{record['id']}#{n}", _spans(att["content"]),
                                         _spans(att["source"]), _spans(att["cue"]))
                         for n, att in enumerate(record["attributions"]) if att["content"])
        except (KeyError, TypeError, ValueError) as exc:
            raise EvalError(f"{path}:{number}: not a PolNeAR record: {exc}") from exc
        out.append(GoldArticle(article, gold, record.get("publisher") or ""))
    return out


# ---------------------------------------------------------------- scoring one article


def _word_index(text: str) -> list[tuple[int, int]]:
    """The (start, end) of every word token of the text."""
    return [(m.start(), m.end()) for m in _WORD.finditer(text)]


def _token_set(words: Sequence[tuple[int, int]], spans: Iterable[Span]) -> frozenset[int]:
    """Indices of the word tokens inside the spans (a token counts when half of it is in)."""
    out: set[int] = set()
    for a, b in spans:
        i = bisect.bisect_left(words, (a, -1))
        i = max(i - 1, 0)
        while i < len(words) and words[i][0] < b:
            s, e = words[i]
            if min(e, b) - max(s, a) > (e - s) / 2:
                out.add(i)
            i += 1
    return frozenset(out)


def _overlaps(spans: Iterable[Span], others: Iterable[Span]) -> bool:
    """Whether any span of one list overlaps any span of the other."""
    return any(a < d and c < b for a, b in spans for c, d in others)


def is_direct(text: str, spans: Sequence[Span]) -> bool:
    """Gold rule: a content is a direct quote when it starts with a quotation mark."""
    return bool(spans) and text[spans[0][0]:spans[0][1]].lstrip()[:1] in _QUOTE_MARKS


@dataclass
class Tally:
    """Sums behind the metrics, added over articles (so subsets and totals compose)."""

    predicted: int = 0
    gold: int = 0
    exact_predicted: int = 0
    exact_gold: int = 0
    overlap_precision: float = 0.0
    overlap_recall: float = 0.0
    matched: int = 0
    speaker_right: int = 0

    def add(self, other: Tally) -> None:
        """Add another tally into this one."""
        for name in self.__dataclass_fields__:
            setattr(self, name, getattr(self, name) + getattr(other, name))

    def figures(self) -> dict[str, float]:
        """Precision, recall, F1 (exact and overlap) and speaker match from the sums."""
        def f1(p: float, r: float) -> float:
            return 2 * p * r / (p + r) if p + r else 0.0
        ep = self.exact_predicted / self.predicted if self.predicted else 0.0
        er = self.exact_gold / self.gold if self.gold else 0.0
        op = self.overlap_precision / self.predicted if self.predicted else 0.0
        orr = self.overlap_recall / self.gold if self.gold else 0.0
        return {"predicted": self.predicted, "gold": self.gold,
                "exact_precision": ep, "exact_recall": er, "exact_f1": f1(ep, er),
                "overlap_precision": op, "overlap_recall": orr, "overlap_f1": f1(op, orr),
                "matched": self.matched,
                "speaker_match": self.speaker_right / self.matched if self.matched else 0.0}


@dataclass(frozen=True)
class _Item:
    tokens: frozenset[int]
    spans: tuple[Span, ...]
    speaker: Span | None
    direct: bool


def _best(item: _Item, others: Sequence[_Item]) -> tuple[int, int]:
    """(index, overlap) of the item in `others` sharing most tokens with `item` (-1, 0)."""
    best, size = -1, 0
    for n, other in enumerate(others):
        shared = len(item.tokens & other.tokens)
        if shared > size:
            best, size = n, shared
    return best, size


def _speaker_right(pred: _Item, gold: GoldAttribution) -> bool:
    """The speaker rule: overlap with the gold source, or no speaker when the gold has none."""
    if not gold.source:
        return pred.speaker is None
    return pred.speaker is not None and _overlaps([pred.speaker], gold.source)


def score_article(gold: GoldArticle, quotes: Sequence[Quote]) -> dict[str, Tally]:
    """Tallies for all contents and for direct quotes of one article."""
    text = gold.article.body
    words = _word_index(text)
    golds = [_Item(_token_set(words, g.content), g.content, None, is_direct(text, g.content))
             for g in gold.attributions]
    preds = [_Item(_token_set(words, q.content_spans), q.content_spans,
                   q.speaker_span if q.speaker else None, q.kind == "direct") for q in quotes]
    tallies = {"all": Tally(), "direct": Tally()}
    for subset, keep in (("all", lambda item: True), ("direct", lambda item: item.direct)):
        _score_subset(gold, [g for g in golds if keep(g)], [p for p in preds if keep(p)],
                      golds, tallies[subset], direct_only=subset == "direct")
    return tallies


def _score_subset(gold: GoldArticle, golds: list[_Item], preds: list[_Item],
                  all_golds: list[_Item], tally: Tally, direct_only: bool) -> None:
    """Add one subset (all, or direct only) of one article to the tally."""
    by_tokens = {g.tokens for g in golds}
    tally.predicted += len(preds)
    tally.gold += len(golds)
    for pred in preds:
        tally.exact_predicted += pred.tokens in by_tokens and bool(pred.tokens)
        index, shared = _best(pred, all_golds if direct_only else golds)
        if index < 0 or not pred.tokens:
            continue
        target = (all_golds if direct_only else golds)[index]
        if direct_only and not target.direct:
            continue  # marked direct, but it overlaps most an indirect content: a false positive
        tally.overlap_precision += shared / len(pred.tokens)
        tally.matched += 1
        attribution = gold.attributions[all_golds.index(target)]
        tally.speaker_right += _speaker_right(pred, attribution)
    for item in golds:
        index, shared = _best(item, preds)
        tally.exact_gold += any(item.tokens == p.tokens for p in preds) and bool(item.tokens)
        if index >= 0 and item.tokens:
            tally.overlap_recall += shared / len(item.tokens)


@dataclass
class QuoteScores:
    """Figures over a data set: all contents, direct quotes, articles, time per article."""

    all: Tally = field(default_factory=Tally)
    direct: Tally = field(default_factory=Tally)
    articles: int = 0
    seconds: float = 0.0

    def to_dict(self) -> dict[str, Any]:
        """The figures as JSON-ready data."""
        return {"articles": self.articles, "ms_per_article":
                1000 * self.seconds / self.articles if self.articles else 0.0,
                "all": self.all.figures(), "direct": self.direct.figures()}


def score(extractor: Extractor, articles: Sequence[GoldArticle]) -> QuoteScores:
    """Run the extractor on every article and add up the tallies."""
    import time

    scores = QuoteScores()
    for gold in articles:
        started = time.process_time()
        quotes = extractor(gold.article)
        scores.seconds += time.process_time() - started
        tallies = score_article(gold, quotes)
        scores.all.add(tallies["all"])
        scores.direct.add(tallies["direct"])
        scores.articles += 1
    return scores


# ---------------------------------------------------------------- resolution (hand-judged)

_PRONOUNS = wordset("he she they it i we you him her them who which")
_LEADING = wordset("the a an his her its their our this that these those some")


def is_pronoun_or_description(mention: str) -> bool:
    """A source that names nobody: a pronoun, or a phrase with no capitalised word after an
    optional leading determiner ("the defense minister", "The influential US daily" is not:
    it has "US" in it, but "The campaign" is)."""
    words = _WORD.findall(mention)
    if not words:
        return False
    if len(words) == 1 and words[0].lower() in _PRONOUNS:
        return True
    rest = words[1:] if words[0].lower() in _LEADING else words
    return bool(rest) and not any(w[:1].isupper() for w in rest)


@dataclass(frozen=True)
class ResolutionItem:
    """One sampled gold attribution and the name our extractor resolved for it."""

    id: str
    mention: str
    resolved: str
    matched: bool


def resolution_sample(articles: Sequence[GoldArticle], size: int = RESOLUTION_SAMPLE,
                      seed: int = RESOLUTION_SEED) -> list[tuple[GoldArticle, GoldAttribution]]:
    """The fixed sample: gold attributions whose source is a pronoun or a description."""
    pool = [(gold, att) for gold in articles for att in gold.attributions
            if att.source and is_pronoun_or_description(
                " ".join(gold.article.body[a:b] for a, b in att.source))]
    pool.sort(key=lambda pair: pair[1].id)
    return random.Random(seed).sample(pool, min(size, len(pool)))


def resolve_sample(extractor: Extractor,
                   sample: Sequence[tuple[GoldArticle, GoldAttribution]]) -> list[ResolutionItem]:
    """For each sampled attribution, the speaker name of the prediction that overlaps its
    content most ("" when no prediction overlaps it)."""
    cache: dict[str, Sequence[Quote]] = {}
    out = []
    for gold, att in sample:
        body = gold.article.body
        quotes = cache.setdefault(gold.article.id, extractor(gold.article))
        words = _word_index(body)
        target = _token_set(words, att.content)
        best = max(quotes, key=lambda q: len(target & _token_set(words, q.content_spans)),
                   default=None)
        matched = best is not None and bool(target & _token_set(words, best.content_spans))
        mention = " ".join(body[a:b] for a, b in att.source)
        out.append(ResolutionItem(att.id, mention,
                                  best.speaker_name if matched and best else "", matched))
    return out


Judgements = Mapping[str, Mapping[str, str] | Sequence[Mapping[str, str]]]


def load_judgements(path: Path = RESOLUTION_FILE) -> dict[str, list[dict[str, str]]]:
    """Hand judgements: id -> rows {"resolved": name judged, "verdict": "correct" | "wrong" |
    "missed"}; an id has one row per name judged (the rules and the tagger may resolve the
    same attribution to different names)."""
    if not path.exists():
        return {}
    try:
        rows = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise EvalError(f"{path}: cannot read judgements: {exc}") from exc
    out: dict[str, list[dict[str, str]]] = {}
    for row in rows:
        out.setdefault(row["id"], []).append(row)
    return out


def verdict_of(item: ResolutionItem, judgements: Judgements) -> str | None:
    """The verdict judged for this very item's name (None when unjudged: a judgement holds
    only for the name it was made on)."""
    rows = judgements.get(item.id, ())
    for row in [rows] if isinstance(rows, Mapping) else rows:
        if row.get("resolved", "") == item.resolved:
            return row.get("verdict", "")
    return None


def judge(items: Sequence[ResolutionItem], judgements: Judgements) -> dict[str, Any]:
    """Share of sampled attributions whose resolved name a judge found correct; a judgement
    counts only for the very name it was made on (a changed name is unjudged)."""
    verdicts = [verdict_of(item, judgements) for item in items]
    correct = verdicts.count("correct")
    unjudged = verdicts.count(None)
    matched = sum(item.matched for item in items)
    matched_correct = sum(1 for item, verdict in zip(items, verdicts, strict=True)
                          if item.matched and verdict == "correct")
    return {"sample": len(items), "correct": correct,
            "wrong": len(items) - correct - unjudged, "unjudged": unjudged,
            "matched": matched,
            "share_correct": correct / len(items) if items else 0.0,
            "share_correct_of_matched": matched_correct / matched if matched else 0.0,
            "ids": [item.id for item in items],
            "unjudged_items": [item.__dict__ for item, verdict in zip(items, verdicts,
                                                                       strict=True)
                               if verdict is None]}


# ---------------------------------------------------------------- the report

TARGETS = (("content overlap F1", "all", "overlap_f1", 0.80),
           ("direct-quote content overlap F1", "direct", "overlap_f1", 0.90),
           ("speaker match, all matched contents", "all", "speaker_match", 0.85),
           ("speaker match, direct quotes", "direct", "speaker_match", 0.90))
CORE_CUES = wordset("said says say told tells added wrote")


#: The extractor the index uses on punctuated copy (all of PolNeAR): its figures meet the targets.
PRODUCT = "tagger"
#: The extractors whose resolved names are judged (the cue-list ablation is not).
JUDGED = ("rules", PRODUCT)


def rule_extractors() -> dict[str, Extractor]:
    """The rules with their PolNeAR-chosen cue list, and with the core speech verbs only
    (what the chosen list buys)."""
    from index.attribution import extract_quotes, find_attributions, to_quotes

    def core(article: Article) -> Sequence[Quote]:
        return to_quotes(article, find_attributions(article.body, CORE_CUES))
    return {"rules": extract_quotes, "rules, core cues only": core}


def product_extractor() -> Extractor:
    """What the index extracts with (`index.quotes.default_extractor`): the learned tagger on
    punctuated text, the rules on punctuation-stripped text; EvalError when the tagger's
    weights do not verify (the index would fall back to the rules)."""
    from index.quotes import default_extractor

    extractor = default_extractor()
    if not extractor.reads_states:
        raise EvalError("the quote tagger's weights are missing or do not verify "
                        "(index/weights/quotes/): the product would use the rules alone")
    return extractor.quotes_of


def default_extractors(tagger: bool = True) -> dict[str, Extractor]:
    """The rules, their core-cue ablation and (unless `tagger` is False) the product's."""
    return {**rule_extractors(), **({PRODUCT: product_extractor()} if tagger else {})}


def _memoised(extractor: Extractor) -> Extractor:
    """The extractor with its quotes kept per article id (scoring and the resolution sample
    read the same articles; the tagger is the slow part)."""
    seen: dict[str, Sequence[Quote]] = {}

    def extract(article: Article) -> Sequence[Quote]:
        if article.id not in seen:
            seen[article.id] = extractor(article)
        return seen[article.id]
    return extract


def run_quotes_eval(data: Path, out: Path | None = None,
                    extractors: Mapping[str, Extractor] | None = None,
                    limit: int | None = None, command: str = "",
                    judgements_file: Path = RESOLUTION_FILE) -> dict[str, Any]:
    """Score the extractors (default: `default_extractors()`) on a PolNeAR file, with the
    hand-judged resolution (`judgements_file`) of the judged ones; the targets are read off
    the product's extractor when it is among them (else the first); the Markdown report goes
    to `out` when given."""
    articles = load_polnear(data, limit=limit)
    chosen = {label: _memoised(ex) for label, ex in (extractors or default_extractors()).items()}
    results = {label: score(ex, articles).to_dict() for label, ex in chosen.items()}
    main = PRODUCT if PRODUCT in chosen else next(iter(chosen))
    sample = resolution_sample(articles)
    judgements = load_judgements(judgements_file)
    resolution = {label: judge(resolve_sample(ex, sample), judgements)
                  for label, ex in chosen.items() if label in JUDGED or label == main}
    report = {"data": str(data), "articles": len(articles),
              "gold_attributions": sum(len(g.attributions) for g in articles),
              "extractor": main, "results": results, "resolution": resolution,
              "machine": _machine(), "command": command}
    if out is not None:
        out.write_text(render_report(report), encoding="utf-8")
    return report


def _machine() -> dict[str, Any]:
    """What the figures were measured on."""
    import os
    import platform

    from qa.eval.machine import cpu_model, total_ram_bytes

    return {"python": platform.python_version(), "platform": platform.platform(),
            "cpu_cores": os.cpu_count() or 0, "processor": cpu_model(),
            "ram_gib": round(total_ram_bytes() / 2**30, 1)}


def _pct(value: float) -> str:
    """A share as a percentage with one decimal."""
    return f"{100 * value:.1f}"


def _figures_table(results: dict[str, Any]) -> list[str]:
    """The Markdown table of every extractor, all contents and direct quotes."""
    lines = ["| extractor | subset | predicted | gold | exact P | exact R | exact F1 | overlap P "
             "| overlap R | overlap F1 | speaker match | ms / article |",
             "|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for label, figures in results.items():
        for subset in ("all", "direct"):
            f = figures[subset]
            lines.append(f"| {label} | {subset} | {f['predicted']} | {f['gold']} | "
                         f"{_pct(f['exact_precision'])} | {_pct(f['exact_recall'])} | "
                         f"{_pct(f['exact_f1'])} | {_pct(f['overlap_precision'])} | "
                         f"{_pct(f['overlap_recall'])} | {_pct(f['overlap_f1'])} | "
                         f"{_pct(f['speaker_match'])} | {figures['ms_per_article']:.1f} |")
    return lines


def _targets_table(report: dict[str, Any]) -> list[str]:
    """The Markdown table of the issue's targets against our figures."""
    figures = report["results"][report["extractor"]]
    lines = ["| target (dev) | goal | ours | met |", "|---|---|---|---|"]
    for label, subset, key, goal in TARGETS:
        value = figures[subset][key]
        lines.append(f"| {label} | ≥ {_pct(goal)} | {100 * value:.2f} | "
                     f"{'yes' if value >= goal else 'no'} |")
    res = report["resolution"][report["extractor"]]
    lines.append(f"| resolution of pronoun / description sources (hand-judged) | ≥ 80.0 | "
                 f"{_pct(res['share_correct'])} | {'yes' if res['share_correct'] >= 0.8 else 'no'}"
                 f"{' (unjudged: ' + str(res['unjudged']) + ')' if res['unjudged'] else ''} |")
    return lines


NOTES = """## How the rules work, and why targets are missed

`index/attribution.py`, pure Python, two stages. Stage 1 finds quotation-mark spans (curly,
straight and the doubled apostrophe of wire copy; a quote left open at a paragraph's end
continues into a paragraph that opens with a mark; titles such as on NBC's "Meet the Press" are
skipped) and attributes each from its frame: after it (", he said", "said Conte", "Mr. Ruiz,
a councillor, said"), before it ("Cruz continued:", "he said that", "Trump boomed:"), or the
previous speaker's when it continues their words in the same or the next paragraph (a second
part in the same paragraph joins the first as one discontinuous content, as PolNeAR annotates
it). Then every cue word of each sentence (the list chosen on train.jsonl, see CUE_VERBS)
makes an attribution: "X said (that) ...", "..., X said", "said X", "according to X", ", X
said," inside a sentence (content on both sides), participles (", saying ...") with the
sentence's subject, coordinated cues ("and added that") with the previous source; relative
"who" is the mention, resolved through its antecedent. Text without punctuation (the seed) is
cut into sentences by capitalised function words and by the cues themselves. Stage 2 resolves
each mention (rules below, shared with the tagger); venue from "told X" and "in an interview
with X".

PolNeAR annotates far more than speech: beliefs, intentions, evaluations and reports of every
kind (verbs of criticism, support, sponsorship, evaluation), each with its own
content; on train.jsonl 37 % of the gold cues contain no word of the chosen cue list (their
words are cues in under 35 % of their uses, or rarer than six times). Rules over a cue list
reach about half of the gold content (recall); what they find, they find precisely (overlap
precision about 85 %). Speaker errors are mostly sources of nested or long-distance
attributions and descriptions the rules cut short.

## The learned tagger (what the index uses on punctuated copy)

`index/quote_tagger.py` tags SOURCE / CUE / CONTENT (BIO) on the token states of the bundled
MiniLM (frozen) with a small head trained on train.jsonl (`newsqa train quotes`); its spans go
through the same stage 2 as the rules (`attribution.to_quotes`: speaker resolution, venue,
kind). It learns PolNeAR's wide notion of attribution, which is what lifts content recall past
the rules'. Its decoded spans are post-processed before stage 2 (`quote_tagger.link`, rules
chosen on train.jsonl): content spans snapped to whole words, and trimmed to the quotation when
a colon leads into it ("Nevadans: “This one is for you.”"); a content linked to the nearest cue
in its own sentence, and a cue to the nearest source in its sentence outside the content,
before the nearest within reach (train: +1.6 points speaker match); contents sharing a cue keep
the quoted ones (a two-part quote) apart from unquoted ones, and an unquoted phrase of under
five words beside a quotation is dropped as a stray (train: +3.2 points direct-quote F1); a
quotation with no cue in its own sentence right after an attributed quotation takes that
speaker (train: +1.7 points direct speaker match); a content opening with a single mark (‘I
Think She Will.’) is direct. Then each source is checked against its cue's syntax
(`quote_tagger.refine_sources` with `attribution.CueSyntax`, the rules' grammar; chosen on 240
train.jsonl articles, speaker match there 82.3 -> 85.7, direct 90.3 -> 91.7; dev 82.4 -> 84.0,
content figures unchanged; train gain of each rule in brackets; all measured with the epoch-6
head committed before the one here, whose dev speaker match is 84.7): a passive cue, its "was"
inside it or just before it, takes its "by" agent ("was rejected by 64 percent of the
electorate", +0.3); a passive without one ("was announced the winner", "are expected to") and
"Asked ..." / "when asked ..." have no source (+1.1); a participle (", saying") takes its
sentence's subject (+0.1); a cue with no source takes the one after "according to" (+0.05) or,
after "and", the sentence's subject ("Carson took the stage and called ...", +0.05); a cue
whose linked source is in another sentence, or after it, takes the subject written right before
it ("when the company balked", +0.7), and else a source across a full stop from its cue is
dropped (right 3 times in 76, +0.3); a content with neither cue nor source within two line
breaks of an attributed one continues its source (+0.8; direct +1.9); tagged sources of
function words alone ("and", "by") are ignored (+0.1); a possessive source ("his") followed by
its noun ("his attorney said", "according to their attorneys") is widened to the noun phrase
unless the noun is the cue itself ("his promise of"). Added for the epoch-8 head, chosen on
the same 240 train.jsonl articles (speaker match there 87.10 -> 87.74, direct 91.84 unchanged,
content figures unchanged; dev 84.7 -> 85.0 shown, 84.98 unrounded: 1,590 of 1,871, one short
of the target): a cue whose words alone say the subject is not the source has none
(`attribution.unsourced_cue`): an evidential alone ("Trump seemed", "the statistics appear",
+0.32; "appeared to imply" keeps its speaker), criticism received without "from" ("came
under", "has fielded sharp criticism on", +0.07), a negated, modified or auxiliary passive
without "by" ("is also expected", "was being challenged on", "has been asked about", +0.15;
"outspoken" is a state, not a passive, +0.02); and a source across a full stop from its cue
gives way to one written by the cue, after "according to" or the subject before "and" (+0.08),
before it is dropped. Added next, same head and articles (speaker match there 87.74 -> 88.23,
direct 91.84 -> 92.06, content figures unchanged; dev 84.98 -> 85.14, 1,593 of 1,871, direct
91.39 -> 91.63):
a relative "who" / "which" source after a comma whose clause closes before the cue is the noun
phrase it attaches to ("Barkley, who said he votes Democratic, said ...", "The complaint,
which was filed in ..., alleged"; +0.24, 11 right, 1 wrong; "Franklin Graham, who has vowed"
keeps "who"); the cue syntax reads a full stop that ends an abbreviation ("Sen. Ted Cruz",
"U.S. History") as no sentence end (+0.14; in linking too it gave +0.19 but cost 0.11 direct
speaker match and 0.01 content F1, so linking keeps the plain break); a passive read through
an auxiliary and adverbs ("has been criticized by some of his rivals", "was first reported by
MSNBC") takes its agent, "startled" being a state (+0.05: 3 right, 1 wrong). Tried and dropped
(no or a one-case gain on train): datelines ("LOS ANGELES (AP) —") as sources naming no one
(0.00), a noun opening the cue as its source ("statement said", +0.02, one case), the subject
before the cue over a linked source earlier in its sentence (13 right, 44 wrong), "there are
fears" / "it is unclear" as no source (5 cases in all), a sentence-opening participle taking
the main clause's subject ("Having announced ..., Judge Berman proceeded", one case), and no
source for nominal cues (no cue word whose matched contents lack a gold source more often than
not). What is left on train (481 of 4,085 matched contents): 282 linked to another cue than the
gold's (mostly a gold cue the tagger never tags; the rest contents cut or merged differently
from the gold, nested attributions), 128 with the right cue and a wrong or missing source
(mostly a gold source the tagger never tags), 71 with a speaker where the gold has none
(evaluations and nominal cues: "fears", "criticism of"); those need the tagger's spans, not
linking.

The head's epoch (of 10) is chosen on the held-out 10 % of the TRAINING articles by the head's
own source, cue and content token F1 (`selection_score`). It used to include the
post-processed content F1, and this round's post-processing changes moved that by about 0.001
and the choice from epoch 6 to epoch 8 (0.0001 apart), so the committed weights stopped
reproducing; the token-only score also picks epoch 8 (2.364 against 2.360 for epoch 6) and no
linking rule can move it. The committed head (session 8: SOURCE and CUE tags weigh 2 in the
training loss, `train_quotes.CLASS_WEIGHTS`) is epoch 8 again (token score 2.374;
`index/weights/quotes/metadata.json`, sha256 a78f467e...). Training is deterministic: `newsqa
train quotes` reproduces the committed weights bit for bit (13 min 5 s on the shared 2-core
machine while other jobs ran; the session-7 head took 9 min 28 s).

Stage 2 resolves the mention (rules chosen on train.jsonl articles only): a relative "who" /
"which" (also "who'd") inside the mention goes to its antecedent, through an appositive ("Ted
Cruz, the Texas senator, who") or to the noun phrase before it; a mention is cut to the part
that names someone ("X, founder of Y" -> X), its edges cleaned ("EPA,", "Scott's", "of
Americans who") and a cut name completed ("John F" -> "John F. Kelly"); names run through
initials and title abbreviations ("Gov. Chris Christie", "John F. Kelly"), a full name winning
over a surname alone as the fullest form; "he" / "she" go to the nearest earlier speaker or
sentence subject whose gender fits (gender from the pronouns after a person's mentions, and
five times from a gendered title or noun just before them: Mr., Mrs., Ms., "actress",
"spokesman"), the subject of "McConnell spokesman Don Stewart" being the spokesman; "I" / "we"
go to the speaker of the quote they sit in, else (outside quotation marks) to the article's
author when the byline is a person; a definite person description ("the candidate", "the
Vermont senator", "the 43-year-old") goes to the name its title was attached to, else the
nearest fitting person; an organisation description to the organisation ("the Clinton campaign"
-> "Clinton campaign", "his campaign" -> the last "<Name> campaign" written before). Rules
added this round, chosen on train.jsonl articles: "they" / "it" (and "their", "its") go to the
subject of their sentence before them, else of the one or two sentences before, that agrees in
number (plural for "they"; a thing or a body, not a person, for "it"): "Trump's campaign
immediately backtracked ... it said" -> "Trump campaign"; "his" / "himself" / "hers" resolve
like "he" / "she"; a common first name counts three pronouns for its bearer's gender ("Ben
Jealous" was made female by a "her" after his name); "who" / "which" take their noun phrase
with capitalised modifiers ("the Latino community", "wealthy Chinese citizens"); a name that
only modifies a noun ("Republican leadership", "the Latino community") is not the source;
number words and datelines are not names ("Two objectors, Ana Ruiz and Paul Vance" -> the two
names; "BRUSSELS -" dropped). A description no rule names (groups, anonymous singulars, things)
is given as written ("voters", "a federal judge", "the letter"), never as a person; a pronoun
after an unnamed aide is that aide as described. Added next, chosen on the 240 train.jsonl
articles by reading every name that changed (right / wrong against the name before): a name
written with a possessive ("Donald Trump’s detractors") is a mention of a known person, which
gives no vote for the person's gender ("finance chairman for Clinton’s campaign" had made her
male) nor makes its form the usual one ("Le Pen’s niece"; 55 names changed: 49 better, 3
worse, 3 wrong both times); "he" / "she" first take the first person of their gender named in
their own sentence before them, outside quotation marks and before any earlier pronoun of that
gender ("Donald Trump drew boos from the audience when he told", "Lindsey Graham called out
his rival Donald Trump ..., which he believes"; not "Though he did not mention Rubio, he"; 22
changed: 19 better, 2 worse); a group noun after a capitalised word is one subject for "they"
("Black voters"; 2 better, 1 worse); "-ist" nouns are person nouns ("the self-described
democratic socialist" -> Bernie Sanders); "his campaign" with no "<Name> campaign" written
before is the campaign of whom "his" resolves to (3 better, 1 worse; "his office" was not);
shares and capitalised phrases ending in a noun are given as written ("More than 4 in 10",
"Early results of exit polls ..."; 22 better, 1 worse). On a resolution sample of 40 of those
train attributions (seed 66, judged by reading by the same rules as dev), 19 -> 25 correct. On
dev the sample moved the other way, 55 -> 53: two names changed and both were judged wrong, a
"he" that went from the speaker of the sentence before to a possessive taken for a person
("RT's political bent" -> "Trump's RT") and "voters" whose predicted mention moved to "the
I.R.S." (a full stop after an abbreviation no longer ends its sentence); no sampled dev
attribution gained. The judge counted a description given as written correct only when the
article gives its referent no name of its own; where it does ("the agency" for a named
agency, "his attorney" named later, "each" for two named candidates) it is wrong. Of the 53
correct on dev, 39 are names, 13 descriptions as written and 1 an unnamed "they" left empty.
Of the 47 judged wrong: 21 have no overlapping prediction (content recall); 13 have a
predicted mention that is not the gold source (the tagger's source span on a nearby name or
phrase), so the name is that phrase's; 13 have the right mention and the wrong name: 5
pronouns sent to another person or thing nearby (gender does not tell them apart, or a
two-word run or a possessive taken for a person), 2 pronouns left unresolved ("you", "It"), 1
description left empty ("bloc", the European Union named just after), 3 descriptions whose
referent the article names, 1 "someone who" that is the first-person author, and 1 cut mention
("another" of "another source"). The 80 % target needs the tagger's source spans (13) and
content recall (21): resolution alone reaches at most 66 here. Changed names were judged
again by reading the dev article (the reason is in the judgement file).

Session 7, resolution rules chosen on train.jsonl only: a fresh sample of 60 pronoun /
description attributions of the 240 train articles (seed 707, judged by reading by the same
rules as dev), and every name that changed over all 4,556 tagger quotes of those articles read
as well (better / worse in brackets). Before, 31 of 60 were correct; of the 29 wrong, 7 had no
overlapping prediction, 6 the tagger's source on another phrase or none, 4 a pronoun sent to
another person, 2 a sentence adverb taken into a name ("Maybe Trump"), 10 a description of a
named body or people not mapped, cut or left empty. Kept: a word capitalised only because it
opens a sentence and written in lower case elsewhere in the article is no name word ("Maybe
Trump", "Pastor Kevin Swanson" -> "Kevin Swanson"), and a surname written alone (at least
twice, once inside a sentence, never in lower case, not after "the", no place, nationality,
title, body or outlet word, not after "in" / "at") is a person when the pronouns after it give
it a gender ("Clinton" in an article that never writes her first name, "Teachout"): sample +3,
32 better, 2 worse (a video caption "We Are Sorry" taken for a person, "al Ashry" -> "Ashry";
a body followed by "he" can still be made a person, and two pronouns instead of one lost three
right names); a person noun between two names makes the second the subject ("Obama
consultant Cornell Belcher", +1; 1 better); a name opening a clause after ", but" or ";" is a
subject ("..., but Christie wasn't having it", +1; 1 better; ", and" mostly ends a list: 2
worse); a closing day is cut from a description and "the board" takes a "<Name> Board of ..."
written before ("the board of elections on Monday" -> "Illinois Board of Elections", +1; 7
better, 0 worse); a short lower-case noun phrase no rule names is given as written ("exit
polling data", +2; 6 better). Sample 31 -> 39 of 60 (8 gained, none lost); train speaker match
(88.23, direct 92.06) and content figures unchanged: resolution moves no span. Tried and
dropped: a name inside its sentence's subject phrase as a subject (sample +1; 38 names changed,
many to things: "Super Bowl", "Latinos"), a name after its title at a sentence's start as a
subject ("Democratic presidential candidate Hillary Clinton"; +1, 3 better, 4 worse), a pronoun
ending a cut mention resolved as that pronoun ("the time he"; sample 0, 6 better, 2 worse), day
words as no name anywhere in a mention (cuts "About two-thirds of Republican ..."), and, for
the dev defect "RT's political bent", a name written only with a possessive as no person
unless a person noun follows (on train 1 name changed, for the worse: "John Kerry’" lost its
first name; so that dev defect stays). On dev, measured once after the rules were fixed, no
name of the 100 sampled attributions changed for either extractor (tagger 53, rules 41), and
content, direct, speaker and direct-speaker figures are the same to the hundredth (80.74,
90.68, 85.14, 91.63): the rules touch none of the dev sample. The rules alone took 3.6 ms an
article here instead of 3.1; timed old against new in one process on the 240 train articles,
these rules add 0.1 ms (2.4 -> 2.5), the rest is the shared machine's load.

Session 8, the tagger's spans for pronoun / description sources, chosen on train.jsonl only:
on the head's held-out 10 % of the training articles (84 articles; 644 gold attributions whose
source is a pronoun or a description) and the seed-707 sample of 60 above. With the epoch-8
head, 85 of the 644 had no overlapping prediction, all with the content untagged (69 with the
cue untagged too), none nested; by cue, 64 stances, acts or nominal cues ("backed", "hired",
"would vote for", "broad support"), 8 beliefs or intentions ("think", "would not want"), 13
speech verbs. 111 had a predicted mention off the gold source: 83 a gold source the tagger
never tags, 28 a tagged source linking passed over, 5 of those an article tagged alone before
a "noun verb" cue ("the" + "statement said"). Kept: SOURCE and CUE tags weigh 2 in the loss
(held-out train, epoch-8 head -> the new epoch-8 head: content overlap F1 80.85 -> 80.88,
direct 92.63 -> 92.33, speaker match 84.89 -> 85.94, direct speaker 94.23 -> 94.52; of the
644, an overlapping prediction 86.8 -> 88.2 %, the predicted mention on the gold source 69.6
-> 74.4 %; the head's token F1 source 81.5 -> 80.8, cue 66.3 -> 67.8, content 88.7 -> 88.9;
sample 39 -> 40 of 60, 7 names changed: 2 right, 5 wrong), and in linking an article tagged
alone right before a two-word cue ending in a verb takes the cue's noun (`noun_out_of_cue`:
"the" + "statement said" -> "the statement" + "said"; with the old head, held-out speaker
84.61 -> 84.89, direct speaker 93.53 -> 94.23; on the 240 articles 88.23 -> 88.27, direct
92.06 -> 92.28; content unchanged). Dropped: three word flags in `token_features` on top of
the weights (pronoun, a cue verb of the rules, a title word): epoch 9 chosen, held-out
speaker 85.94 -> 84.83, direct 92.33 -> 91.06, mention on the gold source 74.4 -> 73.0 %. Not
tried for want of time (a run takes 13 minutes here): heavier weights, a wider GRU, more
epochs. On dev, measured once after the head was fixed: content overlap F1 80.74 -> 80.94,
direct 90.68 -> 90.60, speaker match 85.14 -> 86.20, direct speaker 91.63 -> 92.40,
resolution 53 -> 58 (82 of the 100 with an overlapping prediction, was 79; the 7 names that
changed to ones never judged were judged by reading: 3 right, 4 wrong). The tagger's time an
article was measured with OMP_NUM_THREADS=1 (419 ms); process time counts every thread's CPU,
so it does not compare with the 1,172 ms of the earlier run. What is left is
mostly PolNeAR's wide notion of attribution (stances and acts with a source the tagger
neither tags nor links), which the 80 % target needs.

Resolution is scored over all 100 sampled attributions: a gold attribution no prediction
overlaps counts as wrong, which caps the share at the extractor's recall on that sample.
"""


def _resolution_section(label: str, res: dict[str, Any]) -> list[str]:
    """One extractor's hand-judged resolution figures."""
    return [
        f"**{label}**: correct {res['correct']}, wrong {res['wrong']} (including "
        f"{res['sample'] - res['matched']} with no overlapping prediction, judged wrong), "
        f"unjudged {res['unjudged']}: **{_pct(res['share_correct'])} %** correct; of the "
        f"{res['matched']} with an overlapping prediction, "
        f"{_pct(res['share_correct_of_matched'])} % correct.", ""]


PRODUCT_NOTE = (
    "The index extracts with `index.quotes.default_extractor()`: the learned tagger "
    "(`index/quote_tagger.py`) on punctuated copy and the rules (`index/attribution.py`) on "
    "punctuation-stripped text such as the seed; every PolNeAR article is punctuated, so the "
    "`tagger` row is the product's extractor on all of PolNeAR and the targets are read off "
    "it. Here the tagger runs its own encoder pass over each body (`quotes_of`); at index "
    "time it reads the token states of the embedding pass instead (same tagger, same weights, "
    "chunk windows instead of the tagger's own). The `rules` rows are the rules alone, as on "
    "stripped text, and their ablation with the core speech verbs only.")


def render_report(report: dict[str, Any]) -> str:
    """docs/quotes-eval.md: the command, the machine, the figures, the anchors, resolution."""
    machine = report["machine"]
    resolution = report["resolution"]
    ids = next(iter(resolution.values()))["ids"] if resolution else []
    lines = [
        "# Who said what: attribution extraction measured on PolNeAR",
        "",
        "Generated by `" + (report["command"] or "newsqa eval-quotes --data FILE --out "
                            "docs/quotes-eval.md") + "` (qa/eval/quotes_eval.py).",
        "",
        f"Data: `{report['data']}`: {report['articles']} articles, "
        f"{report['gold_attributions']} gold attributions with a content (PolNeAR v1.0.0; "
        "rules chosen and tagger trained on train.jsonl only). Machine: "
        f"{machine['processor']}, {machine['cpu_cores']} cores, {machine['ram_gib']} GiB, "
        f"Python {machine['python']}; time per article is the CPU time of extraction alone "
        "(process time, so other jobs on the shared machine do not inflate it).",
        "", PRODUCT_NOTE, "",
        f"## Targets ({report['extractor']})", "", *_targets_table(report), "",
        "## Figures", "",
        "Content: exact = the same word tokens as a gold content; overlap = each prediction "
        "scored by the share of its tokens inside the gold content it overlaps most "
        "(precision), each gold content by the share covered by the prediction overlapping it "
        "most (recall). Direct: gold contents that start with a quotation mark; a prediction "
        "marked direct whose best overlap is an indirect content scores 0. Speaker match: for "
        "predictions that overlap a gold content, the predicted speaker mention overlaps the "
        "gold source span (a gold without a source is right only when no speaker is "
        "predicted).", "",
        *_figures_table(report["results"]), "",
        "## Anchors (published, other corpora)", "",
        "| system | reported |", "|---|---|",
        *[f"| {system} | {figures} |" for system, figures in ANCHORS], "",
        "## Resolution of pronoun and description sources", "",
        f"{len(ids)} dev attributions whose gold source is a pronoun or a description "
        f"(seed {RESOLUTION_SEED}, `resolution_sample`); for each extractor, the name it "
        "resolved for the prediction overlapping each was judged by reading the article "
        "(`qa/eval/quotes_resolution.json`: id, resolved name, verdict; a judgement holds "
        "only for the name it was made on).", "",
        *[line for label, res in resolution.items()
          for line in _resolution_section(label, res)],
        "<details><summary>Sampled ids</summary>", "",
        ", ".join(f"`{i}`" for i in ids), "", "</details>", "", NOTES,
    ]
    return "\n".join(lines)

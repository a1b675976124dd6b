"""The question-answering pipeline as LCEL runnables.

question (+ chat history) -> standalone question (deterministic rewrite offline, or an LLM
rewrite) -> retrieve -> answer (extractive or LLM) -> citations checked (inside the answerers).
"""

from __future__ import annotations

import re
import time
from collections.abc import Sequence
from typing import Any

from langchain_core.runnables import Runnable, RunnableLambda

from qa.records import Answer
from qa.retriever import Filters
from qa.text import question_names, single_thread_torch, words

_PERSONAL = {"he", "she", "him", "her", "his", "hers"}
_THING = {"it", "this", "that", "they", "them", "their"}
_ABOUT = re.compile(r"^\s*(?:and\s+|but\s+)?(?:what|how)\s+about\s+(?P<topic>.+?)[\s?.!]*$",
                    re.IGNORECASE)


def previous_questions(history: Sequence[Any] | None) -> list[str]:
    """The user's earlier questions from a chat history in any common shape.

    Accepts (user, assistant) pairs, {"role", "content"} dicts (Gradio "messages"), LangChain
    messages, or plain strings (taken as earlier questions).
    """
    out: list[str] = []
    for item in history or ():
        if isinstance(item, str):
            out.append(item)
        elif isinstance(item, (tuple, list)) and item:
            if isinstance(item[0], str):
                out.append(item[0])
        elif isinstance(item, dict):
            if item.get("role") == "user":
                content = item.get("content")
                if isinstance(content, str):
                    out.append(content)
        elif getattr(item, "type", None) == "human" and isinstance(item.content, str):
            out.append(item.content)
    return [q for q in out if q.strip()]


def _subject(question: str) -> tuple[str, str]:
    """(person or main name, topic) of an earlier question, for carrying over."""
    from qa.extractive import QuestionInfo

    info = QuestionInfo.parse(question)
    names = list(info.names)
    person = info.speaker if info.speaker and question_names(info.speaker) else ""
    if not person and names:
        person = names[0]
    topic = info.topic or (names[-1] if len(names) > 1 else "")
    return person, topic


def rewrite_followup(question: str, history: Sequence[Any] | None) -> str:
    """Make an underspecified follow-up standalone using the previous question (no LLM).

    "what did he say about France?" after "What did Conte say about Libya?" becomes
    "what did Conte say about France?"; "what about Salvini?" keeps the previous frame.
    """
    earlier = previous_questions(history)
    if not earlier:
        return question
    previous = earlier[-1]
    person, topic = _subject(previous)
    about = _ABOUT.match(question)
    if about:
        from qa.extractive import QuestionInfo

        info = QuestionInfo.parse(previous)
        new = about.group("topic")
        if info.speaker and info.topic and not question_names(new):
            return f"What did {info.speaker} say about {new}?"
        if info.speaker and info.topic:
            return previous.replace(info.topic, new) if info.topic in previous else (
                f"{previous} And about {new}?")
        return f"{previous.rstrip('?. ')} - and {new}?"
    tokens = words(question)
    lowered = [t.lower for t in tokens]
    if person and any(w in _PERSONAL for w in lowered) and person not in question:
        def swap(match: re.Match[str]) -> str:
            word = match.group(0).lower()
            return f"{person}'s" if word in ("his", "hers") else person

        return re.sub(r"\b(?:he|she|him|her|his|hers)\b", swap, question, count=1,
                      flags=re.IGNORECASE)
    if (topic or person) and any(w in _THING for w in lowered) and not question_names(question):
        context = topic or person
        return f"{question.rstrip()} (about {context})"
    if not question_names(question) and len(tokens) <= 6 and (person or topic):
        return f"{question.rstrip()} ({', '.join(x for x in (person, topic) if x)})"
    return question


def build_chain(qa: Any) -> Runnable:
    """question dict -> Answer, as a LangChain runnable sequence.

    Input: {"question", "history", "filters": Filters, "k"}. Each step records its time.
    """

    def standalone(state: dict[str, Any]) -> dict[str, Any]:
        started = time.perf_counter()
        question = state["question"]
        history = state.get("history")
        if history:
            if qa.llm_answerer is not None:
                rewritten = qa.llm_answerer.rewrite(question, previous_questions(history))
            else:
                rewritten = rewrite_followup(question, history)
        else:
            rewritten = question
        timings = {"rewrite": time.perf_counter() - started}
        return {**state, "standalone": rewritten, "timings": timings}

    def retrieve(state: dict[str, Any]) -> dict[str, Any]:
        started = time.perf_counter()
        query = state["standalone"]
        with single_thread_torch():
            embedding = qa.embedder.embed_query(query)
        passages = qa.retriever_engine.retrieve(query, k=state.get("k"),
                                                filters=state.get("filters") or Filters(),
                                                query_embedding=embedding)
        timings = {**state["timings"], "retrieve": time.perf_counter() - started}
        return {**state, "passages": passages, "embedding": embedding, "timings": timings}

    def answer(state: dict[str, Any]) -> Answer:
        started = time.perf_counter()
        answerer = qa.llm_answerer or qa.extractive
        with single_thread_torch():
            result = answerer.answer(state["standalone"], state["passages"],
                                     query_embedding=state["embedding"])
        timings = {**state["timings"], **result.timings,
                   "answer": time.perf_counter() - started}
        return _finish(result, state["question"], state["standalone"], timings)

    return (RunnableLambda(standalone, name="standalone_question")
            | RunnableLambda(retrieve, name="retrieve")
            | RunnableLambda(answer, name="answer"))


def _finish(result: Answer, question: str, standalone: str,
            timings: dict[str, float]) -> Answer:
    from dataclasses import replace

    return replace(result, question=question,
                   standalone_question=standalone if standalone != question else "",
                   timings=timings)

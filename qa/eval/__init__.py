"""Measurement tools: evaluation, peers, benchmarks and the quality floor.

Never imported by a product module; only the CLI's eval/bench commands import it, inside the
command. Modules: data (eval files, selection, held-out weeks), metrics, peers, run, report,
machine (machine info, child processes), index_bench, qa_bench, scale, bench, floor,
llm_check (precision and recall of the LLM sentence check).
"""

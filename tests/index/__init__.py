"""Tests of the indexing layer (sources, chunking, keyword index, incremental builds)."""

"""Indexing: articles in, a persistent Chroma store and a keyword index out."""

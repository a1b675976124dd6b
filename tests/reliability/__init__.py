"""Reliability and security checks: load, re-indexing while serving, crashes, hostile input."""

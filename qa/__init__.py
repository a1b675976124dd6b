"""Question answering over the index, with verifiable citations."""

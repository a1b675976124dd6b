"""User interfaces: the Gradio web chat and the newsqa command."""

"""Thin Typer shell: parse options, build a config, call the pipeline, write outputs, map to exit codes."""

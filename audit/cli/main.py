"""The `audit` Typer app. One module per command; this file only wires them together."""

from __future__ import annotations

import typer

from audit import __version__

app = typer.Typer(
    name="audit",
    help="Audit what a PyTorch model actually uses: Integrated Gradients, cross-checked against Captum.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)


def _version(value: bool) -> None:
    if value:
        typer.echo(f"audit {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    version: bool = typer.Option(False, "--version", callback=_version, is_eager=True, help="Show the version."),
) -> None:
    """audit: what is my model actually using?"""


def _register() -> None:
    from audit.cli import bench, demo, render, run

    for module in (run, demo, render, bench):
        module.register(app)


_register()


def main() -> None:
    app()

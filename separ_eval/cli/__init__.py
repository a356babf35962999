"""The `separ-eval` command line: one module per command family, wiring options to the layers below."""

from . import compare, export, results, run  # noqa: F401  (each registers its commands on the group)
from .group import cli


def main(argv=None):
    cli.main(args=argv, prog_name=cli.name)


__all__ = ["cli", "main"]

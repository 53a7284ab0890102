"""pesgen's command line: parse options, call the library, print, map errors to exit codes."""

from __future__ import annotations

import sys
from collections import Counter
from datetime import date
from pathlib import Path
from typing import Annotated

import typer

from . import __version__
from .errors import ExitCode, PesgenError, UsageError

app = typer.Typer(add_completion=False, no_args_is_help=True,
                  help="pesgen: school billing exports to PES V2 (DGFiP) and finance packages.")

MAX_LISTED = 200

MappingOpt = Annotated[Path, typer.Option("--mapping", "-m", help="Mapping file (YAML).")]
OfficialOpt = Annotated[Path | None, typer.Option(
    "--official-xsd", envvar="PESGEN_OFFICIAL_XSD",
    help="Also validate against the DGFiP PES V2 schema package in this folder.")]
FormatsOpt = Annotated[list[Path] | None, typer.Option(
    "--formats-dir", help="Extra folder of format bundles (searched before the shipped ones).")]


def _echo_err(text: str) -> None:
    typer.echo(text, err=True)


def _fail(exc: PesgenError) -> None:
    _echo_err(f"error: {exc}")
    for i, problem in enumerate(exc.problems):
        if i == MAX_LISTED:
            _echo_err(f"  … and {len(exc.problems) - MAX_LISTED} more problem(s)")
            break
        _echo_err(f"  - {problem}")
    if exc.problems:
        _echo_err(f"{len(exc.problems)} problem(s); nothing was written.")
    raise typer.Exit(int(exc.exit_code))


def _parse_date(value: str | None) -> date | None:
    if value is None:
        return None
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise UsageError(f"--date must be YYYY-MM-DD, got '{value}'") from None


@app.command()
def export(
    mapping: MappingOpt,
    input: Annotated[Path, typer.Option("--input", "-i", help="The school's billing export.")],
    out: Annotated[Path, typer.Option("--out", "-o", help="Output folder.")],
    run_date: Annotated[str | None, typer.Option(
        "--date", help="Fix every generated date (YYYY-MM-DD): same input, same bytes.")] = None,
    official_xsd: OfficialOpt = None,
    first_number: Annotated[int, typer.Option(
        "--bordereau-number", min=1, max=9999999,
        help="IdBord (rôle number) of the first bordereau.")] = 1,
    formats_dir: FormatsOpt = None,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="Print only errors.")] = False,
) -> None:
    """Export a billing run: write the file(s) and print a summary."""
    from .export import export as run_export

    try:
        fixed = _parse_date(run_date)
        progress = None
        if not quiet and sys.stderr.isatty():
            def progress(n: int) -> None:
                _echo_err(f"\r{n} invoice(s) read…")
        result = run_export(mapping, input, out, fixed, official_xsd, first_number,
                            formats_dir, progress)
    except PesgenError as exc:
        _fail(exc)
        return
    if quiet:
        return
    typer.echo(f"pesgen {__version__}: format {result.fmt.name}, mapping {mapping}")
    for f in result.files:
        typer.echo(f"  wrote {f.path}  (IdBord {f.bordereau}, {f.titles} title(s), "
                   f"total {f.total:.2f}, sha256 {f.sha256[:16]}…)")
    for ref in result.references:
        typer.echo(f"  wrote {ref}  (payment references)")
    typer.echo(f"titles: {result.titles}, total {result.total:.2f}")
    if result.left_out:
        typer.echo(f"left out: {len(result.left_out)}")
        for lo in result.left_out:
            typer.echo(f"  - {lo.invoice} ({lo.origin}): {lo.reason} (policy {lo.policy})")
    if result.notes:
        counts = Counter(n.policy for n in result.notes)
        typer.echo("policies applied: " + ", ".join(f"{k} ×{v}" for k, v in sorted(counts.items())))
        for n in result.notes:
            if n.policy in ("transliterate", "civility", "case"):
                continue
            typer.echo(f"  - {n.invoice}: {n.policy}: {n.detail}")


@app.command("check-mapping")
def check_mapping(
    mapping: Annotated[Path, typer.Argument(help="Mapping file to check.")],
    formats_dir: FormatsOpt = None,
) -> None:
    """Check a mapping file (schema, code tables, format, template) without any input."""
    from .formats import find_format
    from .mapping import load_mapping
    from .render import renderers

    try:
        m = load_mapping(mapping)
        fmt = find_format(m.output.format, formats_dir)
        renderers(fmt)
    except PesgenError as exc:
        _fail(exc)
        return
    typer.echo(f"{mapping}: OK (format {fmt.name}, {len(m.codes.activities)} activity code(s), "
               f"input {m.input.format})")


@app.command()
def validate(
    file: Annotated[Path, typer.Argument(help="A PES_Aller XML file.")],
    official_xsd: OfficialOpt = None,
    format_name: Annotated[str, typer.Option("--format", help="Format whose XSD to use.")
                           ] = "pes-ormc",
    formats_dir: FormatsOpt = None,
) -> None:
    """Validate an XML file against pesgen's XSD, the bordereau rules and, with
    --official-xsd, the DGFiP package."""
    from .formats import find_format
    from .validate import raise_if, validate_pes_file

    try:
        if not file.is_file():
            raise UsageError(f"{file}: no such file")
        fmt = find_format(format_name, formats_dir)
        xsd = next((f.xsd for f in fmt.files if f.xsd), None)
        if xsd is None:
            raise UsageError(f"format {fmt.name} has no XSD")
        raise_if(validate_pes_file(file, xsd, official_xsd), str(file))
    except PesgenError as exc:
        _fail(exc)
        return
    checked = "pesgen XSD + bordereau rules" + (" + DGFiP XSD" if official_xsd else "")
    typer.echo(f"{file}: valid ({checked})")


@app.command()
def formats(formats_dir: FormatsOpt = None) -> None:
    """List the output formats (bundles) found, with their status."""
    from .formats import list_formats

    for folder, fmt in list_formats(formats_dir):
        if isinstance(fmt, Exception):
            typer.echo(f"{folder.name:<16} BROKEN   {fmt}")
            continue
        note = ""
        if fmt.status == "reconstructed":
            note = "  [layout reconstructed from public integrations: confirm with the publisher]"
        typer.echo(f"{fmt.name:<16} {fmt.status:<13} {fmt.kind:<5} {fmt.title}{note}")


@app.command()
def version() -> None:
    """Print pesgen's version."""
    typer.echo(__version__)


def main() -> None:
    try:
        app()
    except PesgenError as exc:  # pragma: no cover - commands catch their own
        _echo_err(f"error: {exc}")
        sys.exit(int(exc.exit_code))
    except KeyboardInterrupt:  # pragma: no cover
        _echo_err("interrupted; nothing was written")
        sys.exit(int(ExitCode.INTERNAL))

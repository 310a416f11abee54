"""The ``cryoden`` command: one subcommand per verb, each a thin module over the library.

Run ``cryoden COMMAND --help`` for each command's options and an example.
"""

from __future__ import annotations

import sys
from typing import Any

import typer

from cryoden import __version__
from cryoden.cli import common
from cryoden.errors import CryodenError

app = typer.Typer(
    name="cryoden",
    help="Deep-learning denoising of cryo-EM images: simulate, add noise, filter, train, "
    "denoise and evaluate MRC files.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
    context_settings={"help_option_names": ["-h", "--help"]},
)
train_app = typer.Typer(
    help="Train a denoising model (n2n: noisy pairs; n2v, ne2ne: single noisy images).",
    no_args_is_help=True,
)
models_app = typer.Typer(help="Inspect model files.", no_args_is_help=True)
bench_app = typer.Typer(help="Benchmarks and studies.", no_args_is_help=True)


def _version(value: bool) -> None:
    if value:
        typer.echo(f"cryoden {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    verbose: bool = typer.Option(False, "--verbose", "-v", help="Log debugging details."),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="Log warnings and errors only."),
    version: bool = typer.Option(
        False, "--version", callback=_version, is_eager=True, help="Print the version and exit."
    ),
) -> None:
    common.setup_logging(verbose=verbose, quiet=quiet)


def _register() -> None:
    # Imported here so `cryoden --help` stays fast and each command stays in its own module.
    from cryoden.cli import (
        bench_seed,
        demo,
        denoise,
        evaluate,
        filter_cmd,
        models_info,
        noise,
        simulate,
        split_frames,
        train,
    )

    app.command("demo")(demo.command)
    app.command("noise")(noise.command)
    app.command("filter")(filter_cmd.command)
    app.command("evaluate")(evaluate.command)
    app.command("simulate")(simulate.command)
    app.command("denoise")(denoise.command)
    app.command("split-frames")(split_frames.command)
    train_app.command("n2n")(train.n2n)
    train_app.command("n2v")(train.n2v)
    train_app.command("ne2ne")(train.ne2ne)
    models_app.command("info")(models_info.command)
    bench_app.command("seed")(bench_seed.command)
    app.add_typer(train_app, name="train")
    app.add_typer(models_app, name="models")
    app.add_typer(bench_app, name="bench")


_register()


def _usage_line(exc: Any) -> str:
    """A command-line error of typer's parser (unknown option, a value that does not parse,
    a missing argument) as one line that names the command and the option."""
    message = " ".join(exc.format_message().split())
    ctx = getattr(exc, "ctx", None)
    if ctx is None:
        return message
    where = ctx.command_path
    return f"{where}: {message} (see '{where} --help')"


def main() -> None:
    """Console-script entry point: user errors become one line on stderr and a non-zero exit
    status (1; 2 for a command line that does not parse), never a traceback. A reader of
    stdout that goes away (``| head``) ends the command quietly with status 141, as Unix tools
    do."""
    try:
        code = app(standalone_mode=False)
    except common.StdoutError as exc:
        common.silence_stdout()
        if common.is_broken_pipe(exc):
            raise SystemExit(141) from None
        common.fail(str(exc))
    except CryodenError as exc:
        common.fail(str(exc).replace("\n", " "))
    except typer.TyperException as exc:  # typer's parser: usage errors and the like
        if type(exc).__name__ == "NoArgsIsHelpError":
            # `cryoden` or `cryoden train` alone: show the help.
            exc.show()  # type: ignore[attr-defined]  # click's exceptions have show(); typer's base type does not declare it
            raise SystemExit(exc.exit_code) from None
        common.fail(_usage_line(exc), code=exc.exit_code)
    except typer.Abort:
        common.fail("aborted", code=1)
    except MemoryError:
        common.fail("out of memory; try a smaller --tile or fewer images at once")
    try:
        sys.stdout.flush()
    except OSError as exc:
        common.silence_stdout()
        common.fail(f"standard output: cannot write: {exc.strerror or exc}")
    raise SystemExit(code if isinstance(code, int) else 0)


if __name__ == "__main__":
    main()

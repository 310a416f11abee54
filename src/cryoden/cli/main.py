"""The ``cryoden`` command: one subcommand per verb, each a thin module over the library.

Run ``cryoden COMMAND --help`` for each command's options and an example: each command's help
is its module's docstring (:mod:`cryoden.cli.help`).
"""

from __future__ import annotations

import sys
from typing import Any

import typer

from cryoden import __version__
from cryoden.cli import common
from cryoden.cli.help import MARKUP_MODE, Group, command_help, module_help
from cryoden.errors import CryodenError

app = typer.Typer(
    name="cryoden",
    help="Deep-learning denoising of cryo-EM images: simulate, add noise, filter, train, "
    "denoise and evaluate MRC files.\n\n"
    "Example:\n\n"
    "    cryoden train n2v --images micrographs/ --out n2v/ --steps 2000\n"
    "    cryoden denoise --model n2v/ micrographs/*.mrc -o denoised/\n\n"
    "Run cryoden COMMAND --help for each command's options and an example.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
    context_settings={"help_option_names": ["-h", "--help"]},
    rich_markup_mode=MARKUP_MODE,
    cls=Group,
)
train_app = typer.Typer(
    help="Train a denoising model (n2n: noisy pairs; n2v, ne2ne: single noisy images; care: "
    "noisy images with clean targets, the supervised reference).\n\n"
    "Example:\n\n    cryoden train n2v --images micrographs/ --out n2v/ --steps 5000",
    no_args_is_help=True,
    rich_markup_mode=MARKUP_MODE,
    cls=Group,
)
models_app = typer.Typer(
    help="Inspect model files and list the shipped models.\n\nExample:\n\n"
    "    cryoden models list\n    cryoden models info general\n    cryoden models info model/",
    no_args_is_help=True,
    rich_markup_mode=MARKUP_MODE,
    cls=Group,
)
bench_app = typer.Typer(
    help="Benchmarks and studies.\n\nExample:\n\n    cryoden bench seed --quick --out study/",
    no_args_is_help=True,
    rich_markup_mode=MARKUP_MODE,
    cls=Group,
)
inspect_app = typer.Typer(
    help="Measure properties of a dataset.\n\nExample:\n\n"
    "    cryoden inspect noise --a even/ --b odd/",
    no_args_is_help=True,
    rich_markup_mode=MARKUP_MODE,
    cls=Group,
)


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

    commands = {
        "demo": demo,
        "noise": noise,
        "filter": filter_cmd,
        "evaluate": evaluate,
        "simulate": simulate,
        "denoise": denoise,
        "split-frames": split_frames,
    }
    for name, module in commands.items():
        app.command(name, **module_help(module))(module.command)
    for name, function in train.COMMANDS.items():  # each subcommand's docstring has its example
        train_app.command(name, **command_help(function.__doc__))(function)
    models_app.command("info", **module_help(models_info))(models_info.command)
    from cryoden.cli import models_list

    models_app.command("list", **module_help(models_list))(models_list.command)
    bench_app.command("seed", **module_help(bench_seed))(bench_seed.command)
    from cryoden.cli import bench_tomo

    bench_app.command("tomo", **module_help(bench_tomo))(bench_tomo.command)
    app.add_typer(train_app, name="train")
    app.add_typer(models_app, name="models")
    app.add_typer(bench_app, name="bench")
    from cryoden.cli import check, inspect_noise

    app.command("check", **module_help(check))(check.command)
    from cryoden.cli import relion

    app.add_typer(relion.app, name="relion")
    inspect_app.command("noise", **module_help(inspect_noise))(inspect_noise.command)
    app.add_typer(inspect_app, name="inspect")


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

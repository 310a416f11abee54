"""RELION External jobs: denoise a micrographs STAR file, or train on its even/odd sums.

Example::

    cryoden relion denoise --o External/job012/ --in_mics CtfFind/job003/micrographs_ctf.star --j 4 --model External/job011/model.safetensors
    cryoden relion train --o External/job011/ --in_mics MotionCorr/job002/corrected_micrographs.star --j 8 --steps 5000

RELION runs an External job from its project folder as ``EXECUTABLE --o JOBDIR/ --in_mics STAR
[--name value]... --j THREADS``: each parameter of the job's Params tab arrives as ``--name
value``. ``cryoden relion denoise`` takes every option of ``cryoden denoise`` that way (``--model``,
``--tile 1024``, ``--dtype float16``, ``--workers 4``; a flag as ``--no_preview yes``; ``_`` and
``-`` alike); ``--j`` is its ``--threads``. It writes the denoised micrographs and
JOBDIR/micrographs_denoised.star (the input STAR with rlnMicrographName pointing at them, the raw
paths in rlnMicrographNameRaw) in JOBDIR. ``cryoden relion train`` runs ``cryoden train n2n
--star STAR`` (pairs from the even and odd frame sums in rlnMicrographNameEven and
rlnMicrographNameOdd: RELION 5's motion correction writes them with "Save images for denoising?",
or add them from ``cryoden split-frames``), with the options of ``train n2n`` the same way, and
writes JOBDIR/model.safetensors.

Both declare their output in JOBDIR/RELION_OUTPUT_NODES.star (so that later jobs can take it as
input) and end with RELION_JOB_EXIT_SUCCESS, or RELION_JOB_EXIT_FAILURE (an error, or a
micrograph that could not be denoised; the good ones are denoised and listed). RELION's Abort
(JOBDIR/RELION_JOB_ABORT_NOW) stops denoising between micrographs and training at once;
the job then ends with RELION_JOB_EXIT_ABORTED. Run again (Continue), a job skips the
micrographs it has denoised already.
"""

from __future__ import annotations

import logging
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import typer

from cryoden.cli import denoise, train
from cryoden.cli.batch import summarize
from cryoden.cli.common import echo
from cryoden.cli.help import MARKUP_MODE, Group, command_help, help_text
from cryoden.errors import ParameterError
from cryoden.pipeline.relion import MICROGRAPHS_NODE, MODEL_NODE, RelionJobDir

logger = logging.getLogger("cryoden.cli.relion")

#: The trained model, in the job folder.
MODEL_NAME = "model.safetensors"
#: Seconds between looks for RELION's abort request while training runs.
ABORT_POLL_S = 0.5
#: Seconds a training run has to stop after the abort signal before it is killed.
ABORT_GRACE_S = 60
#: Words RELION users write for a flag's value.
_YES = frozenset({"yes", "y", "true", "1", "on"})
_NO = frozenset({"no", "n", "false", "0", "off"})

app = typer.Typer(
    help=help_text(__doc__),
    no_args_is_help=True,
    rich_markup_mode=MARKUP_MODE,
    cls=Group,
)
#: What RELION passes to every External job besides the parameters.
_EXTRA = {"allow_extra_args": True, "ignore_unknown_options": True}
OUT = typer.Option(..., "--o", metavar="JOBDIR", help="The job's folder (RELION sets it).")
IN_MICS = typer.Option(..., "--in_mics", metavar="STAR", help="Input micrographs STAR file.")
THREADS = typer.Option(1, "--j", min=1, help="Threads (RELION's Running tab).")
PIPELINE = typer.Option(None, "--pipeline_control", hidden=True, help="Set by RELION; unused.")


def _click_command(function: Callable[..., Any], name: str) -> Any:
    """The (click) command typer builds for ``function``, to parse options as the command
    does, callbacks and checks included."""
    holder = typer.Typer()
    holder.command(name)(function)
    return typer.main.get_command(holder)


def relion_arguments(command: Any, extras: Sequence[str]) -> list[str]:
    """RELION's ``--name value`` parameters as ``command``'s command line: ``_`` read as
    ``-``; a flag's value yes/no (true/false, 1/0) gives the flag, its ``--no-`` form or
    nothing; a name with no value passes as it is."""
    flags: dict[str, tuple[str, str | None]] = {}  # flag -> (its yes form, its no form)
    for param in command.params:
        if getattr(param, "is_flag", False):  # typer's own (vendored) click classes
            negative = param.secondary_opts[0] if param.secondary_opts else None
            flags.update({opt: (opt, negative) for opt in param.opts})
            flags.update({opt: (opt, param.opts[0]) for opt in param.secondary_opts})
    tokens, i = list(extras), 0
    args: list[str] = []
    while i < len(tokens):
        token = tokens[i]
        if not token.startswith("--"):
            raise ParameterError(f"unexpected argument {token!r}: parameters come as --name value")
        name = "--" + token[2:].replace("_", "-")
        has_value = i + 1 < len(tokens) and not tokens[i + 1].startswith("--")
        value = tokens[i + 1] if has_value else None
        i += 2 if has_value else 1
        if name in ("--output", "--out", "-o"):
            raise ParameterError(f"{token}: the job's folder (--o) holds the outputs")
        if name not in flags:
            args += [name] if value is None else [name, value]
            continue
        yes_form, no_form = flags[name]
        word = "yes" if value is None else value.strip().lower()
        if word in _YES:
            args.append(yes_form)
        elif word in _NO:
            args += [no_form] if no_form else []
        else:
            raise ParameterError(f"{token} takes yes or no, got {value!r}")
    return args


def parse_options(command: Any, name: str, args: list[str]) -> dict[str, Any]:
    """``command``'s parameters from ``args``, as the command line would give them (one-line
    :class:`~cryoden.errors.ParameterError` for an unknown option or a bad value)."""
    try:
        context = command.make_context(name, list(args))  # click consumes the list it parses
    except typer.TyperException as exc:  # the parser's: an unknown option, a bad value
        raise ParameterError(f"{name}: {' '.join(exc.format_message().split())}") from None
    return dict(context.params)


def _as_relion_job(job: RelionJobDir, body: Callable[[], str]) -> None:
    """Run ``body`` (which returns how the job ended: success, failure, aborted) and leave the
    matching exit marker; any error leaves RELION_JOB_EXIT_FAILURE and propagates. Ends with
    status 1 unless the job succeeded."""
    job.start()
    try:
        how = body()
    except BaseException:
        job.finish("failure")
        raise
    job.finish(how)
    if how != "success":
        raise typer.Exit(1)


def denoise_job(
    ctx: typer.Context,
    out: Path = OUT,
    in_mics: Path = IN_MICS,
    threads: int = THREADS,
    pipeline_control: str = PIPELINE,
) -> None:
    """Denoise RELION micrographs as an External job; parameters are cryoden denoise options.

    Example::

        cryoden relion denoise --o External/job012/ --in_mics CtfFind/job003/micrographs_ctf.star --j 4 --model External/job011/model.safetensors --dtype float16

    Writes the denoised micrographs, JOBDIR/micrographs_denoised.star and
    JOBDIR/RELION_OUTPUT_NODES.star, then RELION_JOB_EXIT_SUCCESS (FAILURE when a micrograph
    could not be denoised; ABORTED after RELION's Abort, which stops between micrographs).
    Every option of ``cryoden denoise`` is accepted as ``--name value``.
    """
    job = RelionJobDir.at(out)

    def body() -> str:
        command = _click_command(denoise.command, "denoise")
        args = [str(in_mics), "-o", str(out), "--threads", str(threads)]
        args += relion_arguments(command, ctx.args)
        options = parse_options(command, "cryoden relion denoise", args)
        report, total = denoise.run(**options, should_stop=job.abort_requested)
        summarize("relion denoise", report, total, out)
        star = Path(out) / denoise.STAR_NAME
        if star.exists() and report.count("failed") < len(report.results):
            job.write_output_nodes([(star, MICROGRAPHS_NODE)])
        if report.stopped:
            echo("relion denoise: stopped between micrographs at RELION's request")
            return "aborted"
        return "failure" if report.failed else "success"

    _as_relion_job(job, body)


def train_job(
    ctx: typer.Context,
    out: Path = OUT,
    in_mics: Path = IN_MICS,
    threads: int = THREADS,
    pipeline_control: str = PIPELINE,
) -> None:
    """Train a Noise2Noise model on RELION's even/odd sums as an External job.

    Example::

        cryoden relion train --o External/job011/ --in_mics MotionCorr/job002/corrected_micrographs.star --j 8 --steps 5000

    Runs ``cryoden train n2n --star STAR --out JOBDIR/model.safetensors`` (pairs from
    rlnMicrographNameEven and rlnMicrographNameOdd); every option of ``train n2n`` is accepted
    as ``--name value``. Declares the model in JOBDIR/RELION_OUTPUT_NODES.star and ends with
    RELION_JOB_EXIT_SUCCESS, FAILURE, or ABORTED after RELION's Abort (training stops at once;
    its checkpoint is kept, so ``--resume yes`` continues it).
    """
    job = RelionJobDir.at(out)

    def body() -> str:
        command = _click_command(train.COMMANDS["n2n"], "n2n")
        model = Path(out) / MODEL_NAME
        args = ["--star", str(in_mics), "--out", str(model), "--threads", str(threads)]
        args += relion_arguments(command, ctx.args)
        parse_options(command, "cryoden relion train", args)  # checks before the run starts
        how = run_until_aborted(
            [sys.executable, "-m", "cryoden.cli.main", "train", "n2n", *args], job
        )
        if how == "success":
            job.write_output_nodes([(model, MODEL_NODE)])
        return how

    _as_relion_job(job, body)


def run_until_aborted(argv: list[str], job: RelionJobDir) -> str:
    """Run ``argv`` as a child process (its output is the job's), stopping it when RELION asks
    (SIGINT, then SIGKILL after :data:`ABORT_GRACE_S`). Returns success, failure or aborted."""
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    child = subprocess.Popen(argv, env=env)
    try:
        while child.poll() is None:
            if job.abort_requested():
                child.send_signal(signal.SIGINT)
                try:
                    child.wait(timeout=ABORT_GRACE_S)
                except subprocess.TimeoutExpired:
                    child.kill()
                    child.wait()
                echo("relion train: stopped at RELION's request")
                return "aborted"
            time.sleep(ABORT_POLL_S)
    except BaseException:
        child.kill()
        child.wait()
        raise
    return "success" if child.returncode == 0 else "failure"


app.command("denoise", context_settings=_EXTRA, **command_help(denoise_job.__doc__))(denoise_job)
app.command("train", context_settings=_EXTRA, **command_help(train_job.__doc__))(train_job)

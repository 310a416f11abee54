"""A CryodenError's message is one line, whatever text the problem or the file name holds."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from cryoden.errors import (
    CryodenError,
    InputFileError,
    OutputFileError,
    ParameterError,
    one_line,
)

_TEXT = st.text(alphabet=st.sampled_from(list("ab \n\r\t:é/.")), max_size=40)


@settings(max_examples=200, deadline=None, derandomize=True, database=None)
@given(path=_TEXT, problem=_TEXT)
def test_errors_are_one_line(path, problem):
    for error in (
        InputFileError(path, problem),
        OutputFileError(path, problem),
        ParameterError(problem),
        CryodenError(problem),
    ):
        message = str(error)
        assert "\n" not in message and "\r" not in message
        assert problem.replace("\n", "\\n").replace("\r", "\\r") in message
    assert str(InputFileError(path, problem)).startswith(one_line(path))


def test_error_keeps_its_raw_fields():
    error = InputFileError("a\nb.mrc", "bad\nfile")
    assert error.path == "a\nb.mrc" and error.problem == "bad\nfile"
    assert str(error) == "a\\nb.mrc: bad\\nfile"
    assert isinstance(ParameterError("x"), ValueError)
    assert issubclass(OutputFileError, CryodenError)

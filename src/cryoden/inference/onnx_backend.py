"""ONNX Runtime as an optional CPU backend for float32 inference.

The network is exported to ONNX in memory (PyTorch's TorchScript-based exporter, which needs the
``onnx`` package) once per tile shape and run by an ONNX Runtime session on the CPU with all graph
optimisations. It is the default for float32 CPU inference when installed
(``pip install 'cryoden[onnx]'``) because it runs the default networks faster than PyTorch in
float32 there (``benchmarks/bench_inference.py`` measures both; the figures are in
``benchmarks/results/``). Where the CPU computes bfloat16 natively, PyTorch in bf16 is used instead.

An export or session-creation failure raises :class:`OnnxExportError`, on which the caller may
run the network in PyTorch instead; a failure while a session runs is an ordinary error.
"""

from __future__ import annotations

import importlib.util
import io
import logging
import warnings
from typing import Any

import numpy as np
import torch
from torch import nn

logger = logging.getLogger(__name__)


class OnnxExportError(RuntimeError):
    """The network could not be exported to ONNX, or ONNX Runtime could not load the export."""


def onnxruntime_available() -> bool:
    """Whether the optional ``onnxruntime`` and ``onnx`` packages can be imported."""
    return all(importlib.util.find_spec(name) is not None for name in ("onnxruntime", "onnx"))


class OnnxRuntimeNetwork:
    """Run a float32 network through ONNX Runtime on the CPU, one session per input shape.

    Parameters
    ----------
    network
        Maps ``(B, C, H, W)`` float32 tensors to ``(B, C', H, W)``; exported in eval mode.
    threads
        ONNX Runtime's intra-op threads (default: PyTorch's current thread count).

    Raises
    ------
    OnnxExportError
        From :meth:`session` and :meth:`__call__` when the network cannot be exported or the
        session cannot be created. Errors while a session runs propagate as they are.
    """

    def __init__(self, network: nn.Module, *, threads: int | None = None) -> None:
        import onnxruntime

        self._ort = onnxruntime
        self.network = network.float().eval()
        self.threads = int(threads or torch.get_num_threads())
        # onnxruntime ships no type information: its sessions are Any to mypy.
        self._sessions: dict[tuple[int, ...], Any] = {}

    def session(self, shape: tuple[int, ...]) -> Any:
        """The session for inputs of ``shape`` (exported and created on first use).

        Raises
        ------
        OnnxExportError
            If the export or the session creation fails (the cause is chained).
        """
        if shape not in self._sessions:
            try:
                self._sessions[shape] = self._create_session(shape)
            except Exception as exc:  # noqa: BLE001 - the exporter and ORT raise many types
                raise OnnxExportError(f"{type(exc).__name__}: {exc}") from exc
            logger.debug("ONNX Runtime session for %s tiles", shape)
        return self._sessions[shape]

    def _create_session(self, shape: tuple[int, ...]) -> Any:
        buffer = io.BytesIO()
        example = torch.zeros(shape, dtype=torch.float32)
        with torch.no_grad(), warnings.catch_warnings():
            warnings.simplefilter("ignore")  # the exporter's deprecation and tracer notes
            torch.onnx.export(
                self.network,
                (example,),
                # torch annotates f as a path; its TorchScript exporter (dynamo=False) also
                # writes to a binary file object.
                buffer,  # type: ignore[arg-type]
                input_names=["x"],
                output_names=["y"],
                dynamo=False,
            )
        options = self._ort.SessionOptions()
        options.intra_op_num_threads = self.threads
        options.graph_optimization_level = self._ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        return self._ort.InferenceSession(
            buffer.getvalue(), options, providers=["CPUExecutionProvider"]
        )

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        """Predict a float32 batch ``(B, C, H, W)`` (returned as a float32 CPU tensor)."""
        array = np.ascontiguousarray(x.detach().to("cpu", torch.float32).numpy())
        session = self.session(tuple(array.shape))
        (out,) = session.run(None, {"x": array})
        return torch.from_numpy(out)

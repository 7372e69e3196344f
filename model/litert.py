"""Runs a TFLite file with LiteRT on batches whose size changes.

LiteRT plans a graph for one input shape: a new batch size means resizing the input and allocating every
tensor again. That is cheap for some files (under 0.2 ms for the emotion network) and costs as much as a
few items for others (10-15 ms for the face mesh). Callers whose batch size jumps about ask for padding: a
batch smaller than the planned one, but more than half its size, is padded with zeros instead.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from ai_edge_litert.interpreter import Interpreter


class BatchModel:
    """One TFLite file on LiteRT, run on a whole batch per call; the first input axis is the batch.

    Raises ValueError (LiteRT's own, naming what is wrong) when the file is not a TFLite model.
    """

    def __init__(self, path: str | Path, num_threads: int, pad: bool = False) -> None:
        self._interpreter = Interpreter(model_path=str(path), num_threads=num_threads)
        details = self._interpreter.get_input_details()[0]
        self._input, self.input_shape = details["index"], tuple(int(n) for n in details["shape"][1:])
        outputs = self._interpreter.get_output_details()
        self._outputs, self.output_names = [d["index"] for d in outputs], [d["name"] for d in outputs]
        self._pad = pad
        # The batch size the graph is planned for: a padded call runs this many items.
        self.batch_size = 0

    def invoke(self, batch: np.ndarray) -> list[np.ndarray]:
        """Every output (in `output_names` order) as the interpreter lays it out, for `batch_size` items:
        more than len(batch) when padded."""
        count = len(batch)
        if count != self.batch_size and not (self._pad and count < self.batch_size < 2 * count):
            self._interpreter.resize_tensor_input(self._input, [count, *self.input_shape])
            self._interpreter.allocate_tensors()
            self.batch_size = count
        if count < self.batch_size:
            batch = np.concatenate([batch, np.zeros((self.batch_size - count, *self.input_shape), batch.dtype)])
        self._interpreter.set_tensor(self._input, batch)
        self._interpreter.invoke()
        return [self._interpreter.get_tensor(index) for index in self._outputs]

    def run(self, batch: np.ndarray) -> list[np.ndarray]:
        """Every output with one row per item of `batch`, padding dropped.

        For outputs laid out item after item, whatever their shape: some fold the batch into one row (the
        iris model's are (1, B * 213)), so they are split by size, not by their first axis.
        """
        return [output.reshape(self.batch_size, -1)[: len(batch)] for output in self.invoke(batch)]

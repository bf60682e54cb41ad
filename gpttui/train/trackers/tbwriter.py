"""TensorBoard event files written with the `tensorboard` package alone (no torch).

`torch.utils.tensorboard.SummaryWriter` imports torch: 1.8 s of CPU in the tracker process
on the 2-core dev machine, taken while the run starts, against 0.25 s for these imports.
The records are the ones SummaryWriter writes: scalars as `simple_value`, text as the text
plugin's string tensor under `TAG/text_summary`, and on a resumed run a session START at the
purge step, so TensorBoard hides what a lost session logged past its checkpoint.
"""

from __future__ import annotations

import time
from pathlib import Path

from tensorboard.compat.proto.event_pb2 import Event, SessionLog
from tensorboard.compat.proto.summary_pb2 import Summary, SummaryMetadata
from tensorboard.compat.proto.tensor_pb2 import TensorProto
from tensorboard.compat.proto.tensor_shape_pb2 import TensorShapeProto
from tensorboard.plugins.text.plugin_data_pb2 import TextPluginData
from tensorboard.summary.writer.event_file_writer import EventFileWriter


class TbWriter:
    """One events file in `log_dir` (created), written by tensorboard's own file writer."""

    def __init__(self, log_dir: Path, purge_step: int | None = None) -> None:
        log_dir.mkdir(parents=True, exist_ok=True)
        self.writer = EventFileWriter(str(log_dir))
        if purge_step is not None:
            self.writer.add_event(Event(step=purge_step, file_version="brain.Event:2"))
            self.writer.add_event(Event(step=purge_step, session_log=SessionLog(status=SessionLog.START)))

    def _add(self, summary: Summary, step: int) -> None:
        self.writer.add_event(Event(wall_time=time.time(), step=step, summary=summary))

    def add_scalar(self, tag: str, value: float, step: int) -> None:
        self._add(Summary(value=[Summary.Value(tag=tag, simple_value=float(value))]), step)

    def add_text(self, tag: str, text: str, step: int) -> None:
        meta = SummaryMetadata(plugin_data=SummaryMetadata.PluginData(
            plugin_name="text", content=TextPluginData(version=0).SerializeToString()))
        tensor = TensorProto(dtype="DT_STRING", string_val=[text.encode("utf-8")],
                             tensor_shape=TensorShapeProto(dim=[TensorShapeProto.Dim(size=1)]))
        self._add(Summary(value=[Summary.Value(tag=f"{tag}/text_summary", metadata=meta, tensor=tensor)]), step)

    def flush(self) -> None:
        self.writer.flush()

    def close(self) -> None:
        self.writer.close()

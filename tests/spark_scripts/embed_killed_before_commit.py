"""spark-submit this (master local[2]): run the embedding job, then run it again and kill
Spark's JVM in the middle of the second run, before its commit.

argv: the marker file, then the job's flags. Prints "FIRST_RUN_DONE" after the first run;
the second never returns. The worker that kills Spark writes the marker file first (a line
on its stderr may be lost: Spark forwards it from the JVM it is about to kill).
"""

import functools
import os
import signal
import sys

import psutil

from jobs import embed_notes
from notellm2_udf.embedding import day as embedding
from notellm2_udf.embedding.udf import load_encoder


class KillsSparkOnSecondBatch:
    marker = ""

    def __init__(self, model, settings, device):
        self.encoder = load_encoder(model, settings, device)
        self.model_version = self.encoder.model_version
        self.calls = 0

    def encode_frames(self, frames):
        for encoded in self.encoder.encode_frames(frames):
            self.calls += 1
            if self.calls == 2:
                # worker -> pyspark daemon -> the JVM running driver and executor (local mode).
                jvm = psutil.Process(os.getpid()).parent().parent()
                with open(self.marker, "w") as marker:
                    marker.write(f"killing {jvm.pid}\n")
                os.kill(jvm.pid, signal.SIGKILL)
            yield encoded


KillsSparkOnSecondBatch.marker, *argv = sys.argv[1:]
assert embed_notes.main(argv) == 0
print("FIRST_RUN_DONE", flush=True)
# The job reaches the executors through embedding.day.encode_notes (embed_day).
embedding.encode_notes = functools.partial(embedding.encode_notes,
                                           factory=KillsSparkOnSecondBatch)
embed_notes.main(argv)
print("SECOND_RUN_RETURNED", flush=True)

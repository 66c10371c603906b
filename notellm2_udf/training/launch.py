"""The driver's side of a training run: one petastorm dataset per epoch and process, and
the processes themselves (in the driver, or through TorchDistributor)."""

from __future__ import annotations

from pyspark.sql import DataFrame
from pyspark.sql import functions as F

from notellm2_udf.training.data import make_rank_converters
from notellm2_udf.training.loop import train_process
from notellm2_udf.training.pairs import number_epoch
from notellm2_udf.training.plan import TrainPlan


def epoch_converters(pair_rows_df: DataFrame, plan: TrainPlan, processes: int,
                     cache_dir_url: str) -> list[list]:
    """Per epoch from the start epoch, one petastorm dataset per process; a resumed epoch
    starts at the first pair not yet trained on."""
    settings = plan.settings
    converters = []
    for epoch in range(plan.start_epoch, settings.epochs):
        numbered_df = number_epoch(pair_rows_df, seed=settings.seed, epoch=epoch,
                                   batch_pairs=settings.batch_pairs, processes=processes)
        if epoch == plan.start_epoch:
            numbered_df = numbered_df.where(
                F.col("step") >= plan.start_step - epoch * plan.steps_per_epoch)
        converters.append(make_rank_converters(numbered_df, processes, cache_dir_url))
    return converters


def validation_converters(validation_rows_df: DataFrame, plan: TrainPlan, processes: int,
                          cache_dir_url: str) -> list:
    """One petastorm dataset per process of the validation pairs: the same global batches
    (of the training's size) at every validation, in one seeded order."""
    settings = plan.settings
    numbered_df = number_epoch(validation_rows_df, seed=settings.seed, epoch=0,
                               batch_pairs=settings.batch_pairs, processes=processes)
    return make_rank_converters(numbered_df, processes, cache_dir_url)


def run_processes(plan: TrainPlan, processes: int, use_gpu: bool, on_executors: bool) -> dict:
    """One process runs in the driver; several go through TorchDistributor."""
    if processes == 1 and not on_executors:
        return train_process(plan)
    from pyspark.ml.torch.distributor import TorchDistributor

    distributor = TorchDistributor(num_processes=processes, local_mode=not on_executors,
                                   use_gpu=use_gpu)
    return distributor.run(train_process, plan)

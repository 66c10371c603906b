"""The training recipe and its files, each setting declared once with its train.py flag."""

from __future__ import annotations

from dataclasses import dataclass

from notellm2_udf.model.images import DEFAULT_MAX_PIXELS
from notellm2_udf.settings.declared import option, required
from notellm2_udf.settings.values import non_negative_int_arg, positive_int_arg

LR_SCHEDULES = ("warmup_decay_log", "linear")


@dataclass(frozen=True)
class TrainSettings:
    """The run's hyper-parameters and files (the authors' 7B recipe as defaults: 128 pairs
    per global step, e.g. 1 process x 128 or 8 x 16)."""

    init_model_dir: str = required(name="--init-model",
                                   help="NoteLLM-2 checkpoint to start from (a path or URI)")
    output_dir: str = required(name="--output",
                               help="directory for the model, checkpoints and log")
    epochs: int = option(1, parse=positive_int_arg, help="passes over the training pairs")
    # Per process. The job sets it from its --global-batch-pairs (or --batch-pairs).
    batch_pairs: int = 128
    # GradCache: embed this many pairs per forward pass, back-propagate them chunk by chunk
    # (0: the whole local batch in one pass). Same loss and gradients, bounded activations.
    sub_batch_pairs: int = option(16, parse=non_negative_int_arg,
                                  help="GradCache: pairs per forward pass within a process's "
                                       "batch (0 = the whole batch in one pass)")
    lr: float = option(3e-6, parse=float, help="peak learning rate")
    weight_decay: float = option(0.001, parse=float, help="AdamW weight decay")
    # True: one group, decay on every parameter including the temperature (the authors');
    # False: none on biases, norms, vectors and the temperature (CLIP's habit, our v1).
    decay_all_parameters: bool = option(
        True, name="--no-decay-on-vectors", negate=True,
        help="no weight decay on biases, norms, vectors and the temperature (default: every "
             "parameter, as the authors)")
    warmup_ratio: float = option(0.1, parse=float, help="share of the steps warming up")
    lr_schedule: str = option(
        "warmup_decay_log", choices=LR_SCHEDULES,
        help="warmup_decay_log = DeepSpeed WarmupDecayLR, log warm-up (the authors'); linear "
             "= Hugging Face linear warm-up and decay")
    max_grad_norm: float = option(1.0, parse=float,
                                  help="clip the gradient's global norm (0 = off)")
    # mICL: L = (text_weight L_m + vision_weight L_v) / (text_weight + vision_weight)
    text_weight: float = option(9.0, parse=float,
                                help="mICL weight of the multimodal loss L_m")
    vision_weight: float = option(1.0, parse=float, help="mICL weight of the visual loss L_v")
    temperature_cap: float | None = option(
        None, parse=float, help="clamp the temperature t at this value (default: none, as the "
                                "authors; our v1 used ln 100 = 4.605)")
    optimizer: str = "adamw"  # or "sgd" (plain, no momentum): for exact-equivalence checks
    # Validation (when the plan has validation converters): the loss on the validation
    # pairs every eval_every steps (the authors': 1750), the lowest kept as OUTPUT/best.
    eval_every: int = option(1750, parse=positive_int_arg,
                             help="steps between validations (the authors'); the lowest "
                                  "validation loss is the final model")
    seed: int = option(0, parse=int, help="data order, image flips, dropout")
    checkpoint_every: int = option(0, parse=non_negative_int_arg,
                                   help="save a resumable checkpoint every N steps (default: "
                                        "at the end only)")
    stop_at_step: int | None = option(None, parse=positive_int_arg,
                                      help="stop after this global step (checkpointed); "
                                           "continue with --resume")
    use_gpu: bool = option(False, help="one GPU per process, bf16 autocast")
    max_image_pixels: int = DEFAULT_MAX_PIXELS
    reader_workers: int = 1

"""`notellm2 init-model`: compose an untrained NoteLLM-2 checkpoint.

From local Hugging Face checkpoints (`--llm DIR --vision DIR`, loaded with from_pretrained,
nothing downloaded) or as a tiny random model for tests and the demo (`--tiny-random`).
"""

from __future__ import annotations

import argparse
import sys

from notellm2_udf.model.configuration import FUSIONS, MISSING_IMAGE, PROMPT_LANGUAGES


def add_arguments(parser: argparse.ArgumentParser) -> None:
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument("--tiny-random", action="store_true",
                        help="a tiny random model for tests and the demo (seconds on a CPU)")
    source.add_argument("--llm", metavar="DIR", help="local Hugging Face decoder LLM checkpoint")
    parser.add_argument("--vision", metavar="DIR",
                        help="local Hugging Face vision tower (CLIP, SigLIP); required with --llm")
    parser.add_argument("--out", metavar="DIR", required=True, help="checkpoint directory to write")
    parser.add_argument("--fusion", choices=FUSIONS, default="micl_late",
                        help="micl_late = NoteLLM-2 (default); "
                             "the others are the paper's ablations")
    parser.add_argument("--seed", type=int, default=0, help="seed of the new modules' random init")
    parser.add_argument("--num-query-tokens", type=int, default=16,
                        help="Q-Former queries = visual tokens per image (default 16; the "
                             "authors also ran 8, 32, 48)")
    parser.add_argument("--qformer-hidden-size", type=int, default=None,
                        help="Q-Former width (default 768; 32 with --tiny-random), independent "
                             "of the ViT's (e.g. 1536 for a ViT-bigG tower)")
    parser.add_argument("--prompt-language", choices=PROMPT_LANGUAGES, default="zh",
                        help="zh = the authors' prompt (default); en = our translation")
    parser.add_argument("--missing-image", choices=MISSING_IMAGE, default="zero_image",
                        help="zero_image = the authors' all-zero pixels (default); "
                             "learned_vector = no image segment, a learned stand-in")
    parser.add_argument("--use-topics-column", action="store_true",
                        help="prepend the notes' topics column to the content's hashtags")


def config_options(args: argparse.Namespace) -> dict:
    """The NoteLLM2Config fields chosen on the command line."""
    options = {"num_query_tokens": args.num_query_tokens,
               "prompt_language": args.prompt_language, "missing_image": args.missing_image,
               "use_topics_column": args.use_topics_column}
    if args.qformer_hidden_size:
        options["qformer_hidden_size"] = args.qformer_hidden_size
    return options


def run(args: argparse.Namespace) -> int:
    from notellm2_udf.model.checkpoint import save_checkpoint
    from notellm2_udf.model.compose import compose_from_pretrained, compose_tiny_random

    if args.tiny_random:
        model, processor = compose_tiny_random(args.fusion, args.seed, **config_options(args))
    elif not args.vision:
        print("init-model: --llm needs --vision DIR", file=sys.stderr)
        return 2
    else:
        model, processor = compose_from_pretrained(args.llm, args.vision, args.fusion, args.seed,
                                                   **config_options(args))
    version = save_checkpoint(model, processor, args.out)
    parameters = sum(p.numel() for p in model.parameters())
    print(f"init-model: wrote {args.out} (fusion={model.config.fusion}, "
          f"{parameters / 1e6:.2f}M parameters, model_version={version})")
    return 0

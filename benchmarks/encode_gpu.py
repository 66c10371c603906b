"""Encoding throughput and MFU of NoteLLM-2: the authors' recipe against ours, same process.

    python benchmarks/encode_gpu.py                                   # GPU: 1.5b and 7b (~5 min, H100/H200)
    python benchmarks/encode_gpu.py --device cpu --configs tiny,small # CPU figures

Random weights (no download), realistic prompts: 20-140 text tokens per note plus the mICL
image segment (16 visual tokens), every note with an image. Measured: the model's forward
over prepared inputs (tokens and pixel tensors ready), i.e. the accelerator's work; the
CPU-side preparation (image decoding, tokenising) is reported separately per core.

MFU = useful FLOPs / (seconds x measured matmul peak). Useful FLOPs count only non-padding
tokens: 2 x parameters x tokens for every linear layer, plus causal attention
(2 x layers x tokens^2 x hidden) for the LLM, and the same for the ViT and Q-Former.

Recipes:
  authors  bf16 (fp32 on CPU), 50 notes per batch, sorted by length, right-padded, SDPA
  budget   the Encoder's: sorted by length, batches of up to --batch-tokens padded tokens
"""

import argparse
import io
import json
import time

import numpy as np
import pandas as pd
import torch
from PIL import Image
from transformers import (
    Blip2QFormerConfig,
    CLIPImageProcessorPil,
    CLIPVisionConfig,
    LlamaConfig,
    Qwen2Config,
)

from notellm2_udf.configuration import NoteLLM2Config
from notellm2_udf.encoder import token_budget_batches
from notellm2_udf.init_model import add_special_tokens
from notellm2_udf.modeling import NoteLLM2Model
from notellm2_udf.processor import NoteLLM2Processor, PreparedNotes
from notellm2_udf.tokenizer_tiny import build_tiny_tokenizer

VIT_B16 = {"hidden_size": 768, "intermediate_size": 3072, "num_hidden_layers": 12, "num_attention_heads": 12,
               "image_size": 224, "patch_size": 16}
QFORMER_6 = {"hidden_size": 768, "intermediate_size": 3072, "num_hidden_layers": 6, "num_attention_heads": 12}
CONFIGS = {
    "tiny": (
        {"hidden_size": 32, "intermediate_size": 64, "num_hidden_layers": 2, "num_attention_heads": 4,
             "image_size": 32, "patch_size": 8},
        {"hidden_size": 32, "intermediate_size": 64, "num_hidden_layers": 2, "num_attention_heads": 4},
        Qwen2Config(hidden_size=32, intermediate_size=64, num_hidden_layers=2, num_attention_heads=4,
                    num_key_value_heads=2, vocab_size=300),
    ),
    "small": (
        {"hidden_size": 128, "intermediate_size": 512, "num_hidden_layers": 2, "num_attention_heads": 4,
             "image_size": 64, "patch_size": 16},
        {"hidden_size": 128, "intermediate_size": 512, "num_hidden_layers": 2, "num_attention_heads": 4},
        Qwen2Config(hidden_size=256, intermediate_size=1024, num_hidden_layers=4, num_attention_heads=4,
                    num_key_value_heads=2, vocab_size=2048),
    ),
    # Qwen2-1.5B-like LLM (1.3B non-embedding-heavy parameters), CLIP ViT-B/16, 6-layer Q-Former.
    "1.5b": (
        VIT_B16, QFORMER_6,
        Qwen2Config(hidden_size=1536, intermediate_size=8960, num_hidden_layers=28, num_attention_heads=12,
                    num_key_value_heads=2, vocab_size=151936),
    ),
    # LLaMA-2-7B-like LLM.
    "7b": (
        VIT_B16, QFORMER_6,
        LlamaConfig(hidden_size=4096, intermediate_size=11008, num_hidden_layers=32, num_attention_heads=32,
                    num_key_value_heads=32, vocab_size=32000),
    ),
}


def build(name: str, device: torch.device, dtype: torch.dtype):
    vision, qformer, text = CONFIGS[name]
    tokenizer = build_tiny_tokenizer()
    token_ids = add_special_tokens(tokenizer)
    config = NoteLLM2Config(vision_config=CLIPVisionConfig(**vision),
                            qformer_config=Blip2QFormerConfig(**qformer), text_config=text, **token_ids)
    torch.manual_seed(0)
    with torch.device(device):
        model = NoteLLM2Model._from_config(config, dtype=dtype, attn_implementation="sdpa").eval()
    size = config.vision_config.image_size
    image_processor = CLIPImageProcessorPil(size={"shortest_edge": size}, crop_size={"height": size, "width": size})
    return model, NoteLLM2Processor(tokenizer, image_processor, model.config)


def synthetic_notes(processor: NoteLLM2Processor, n: int, seed: int = 0) -> PreparedNotes:
    """n notes with 20-140 text-segment tokens (byte tokenizer: 1 token per ASCII byte)."""
    rng = np.random.default_rng(seed)
    template = processor.config.max_text_tokens - processor.field_token_budget
    text_tokens = rng.integers(20, 141, n)
    fields = [processor.prepare_fields("t", "x" * max(0, int(k) - template - 1), None) for k in text_tokens]
    has_image = np.ones(n, dtype=bool)
    input_ids, embedding_positions, visual_positions = processor.tokenize(fields, has_image)
    size = processor.image_size
    return PreparedNotes(
        input_ids=input_ids, lengths=embedding_positions + 1, embedding_positions=embedding_positions,
        visual_positions=visual_positions, image_ok=has_image, text_ok=has_image,
        image_error=[None] * n, pixel_values=torch.randn(n, 3, size, size), image_index=np.arange(n),
    )


def preparation_rate(processor: NoteLLM2Processor, notes_count: int = 64) -> float:
    """Notes/s of `prepare_notes` (JPEG decoding at 1080 x 1440, resizing, tokenising), one thread."""
    rng = np.random.default_rng(0)
    jpegs = []
    for _ in range(4):
        buffer = io.BytesIO()
        Image.fromarray(rng.integers(0, 256, (1440, 1080, 3), dtype=np.uint8)).save(buffer, "JPEG", quality=85)
        jpegs.append(buffer.getvalue())
    notes_pdf = pd.DataFrame({
        "title": ["A note title"] * notes_count,
        "content": ["Some content about the picture #travel# " * 3] * notes_count,
        "topics": [["city"]] * notes_count,
        "image": [jpegs[i % 4] for i in range(notes_count)],
    })
    start = time.perf_counter()
    processor.prepare_notes(notes_pdf)
    return notes_count / (time.perf_counter() - start)


def linear_params(module: torch.nn.Module) -> int:
    return sum(m.weight.numel() for m in module.modules() if isinstance(m, torch.nn.Linear))


def useful_flops(model: NoteLLM2Model, notes: PreparedNotes) -> float:
    config = model.config
    text, vision, qformer = config.text_config, config.vision_config, config.qformer_config
    tokens = notes.lengths.astype(np.float64)
    llm = 2 * linear_params(model.language_model) * tokens.sum()
    llm += 2 * text.num_hidden_layers * text.hidden_size * (tokens ** 2).sum()
    patches = (vision.image_size // vision.patch_size) ** 2 + 1
    conv = 2 * 3 * vision.patch_size ** 2 * vision.hidden_size * (patches - 1)
    vit = 2 * linear_params(model.vision_tower) * patches + conv
    vit += 4 * vision.num_hidden_layers * vision.hidden_size * patches ** 2
    queries = config.num_query_tokens
    cross = model.connector.qformer.encoder.layer[0].crossattention.attention
    cross_layers = sum(1 for layer in model.connector.qformer.encoder.layer if layer.has_cross_attention)
    kv_params = cross.key.weight.numel() + cross.value.weight.numel()
    qformer_flops = 2 * (linear_params(model.connector) - cross_layers * kv_params) * queries
    qformer_flops += 2 * cross_layers * kv_params * patches  # keys/values over the ViT tokens
    qformer_flops += 4 * qformer.num_hidden_layers * qformer.hidden_size * queries * (queries + patches)
    projector = 2 * linear_params(model.projector) * queries
    return llm + len(tokens) * (vit + qformer_flops + projector)


def matmul_peak(device: torch.device, dtype: torch.dtype) -> float:
    """FLOP/s of a large square matmul, best of a few runs."""
    size = 8192 if device.type == "cuda" else 1024
    a, b = torch.randn(size, size, device=device, dtype=dtype), torch.randn(size, size, device=device, dtype=dtype)
    best = float("inf")
    for _ in range(5):
        sync(device)
        start = time.perf_counter()
        for _ in range(10):
            a @ b
        sync(device)
        best = min(best, (time.perf_counter() - start) / 10)
    return 2 * size ** 3 / best


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize()


def authors_batches(lengths: np.ndarray, rows: int = 50) -> list[np.ndarray]:
    order = np.argsort(-lengths, kind="stable")
    return [order[i:i + rows] for i in range(0, len(order), rows)]


def run_recipe(model, processor, notes, batches, device) -> tuple[float, float]:
    """(seconds, padded-token fraction) for one pass over `batches`."""
    inputs = [{k: v.to(device, non_blocking=True) for k, v in processor.collate(notes, rows).items()}
              for rows in batches]
    padded = sum(x["input_ids"].numel() for x in inputs)
    sync(device)
    start = time.perf_counter()
    with torch.inference_mode():
        for batch in inputs:
            model(**batch)
    sync(device)
    return time.perf_counter() - start, 1 - notes.lengths.sum() / padded


def benchmark(name: str, device: torch.device, notes_count: int, batch_tokens: int, peak: float, compile_llm: bool):
    dtype = torch.bfloat16 if device.type == "cuda" else torch.float32
    model, processor = build(name, device, dtype)
    if compile_llm:
        model.language_model.forward = torch.compile(model.language_model.forward, dynamic=True)
    print(json.dumps({"config": name, "preparation_notes_per_s_one_thread": round(preparation_rate(processor), 1)}))
    notes = synthetic_notes(processor, notes_count)
    flops = useful_flops(model, notes)
    params = sum(p.numel() for p in model.parameters())
    results = []
    for recipe, batches in (("authors", authors_batches(notes.lengths)),
                            ("budget", token_budget_batches(notes.lengths, batch_tokens))):
        warm = [b[: max(1, len(b) // 4)] for b in batches[:2]]
        run_recipe(model, processor, notes, warm, device)  # kernels, allocator, compile
        seconds, padding = run_recipe(model, processor, notes, batches, device)
        results.append({"config": name, "recipe": recipe, "params_m": round(params / 1e6, 1),
                            "notes": notes_count, "batches": len(batches), "padding": round(float(padding), 3),
                            "notes_per_s": round(notes_count / seconds, 1),
                            "mfu": round(flops / seconds / peak, 4)})
        print(json.dumps(results[-1]), flush=True)
    del model
    if device.type == "cuda":
        torch.cuda.empty_cache()
    return results


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--configs", default="1.5b,7b", help=f"comma-separated, of {list(CONFIGS)}")
    parser.add_argument("--notes", type=int, default=None, help="notes per config (default 2000 GPU, 200 CPU)")
    parser.add_argument("--batch-tokens", type=int, default=None, help="budget recipe (default 16384 GPU, 4096 CPU)")
    parser.add_argument("--compile", action="store_true", help="torch.compile the LLM forward")
    args = parser.parse_args(argv)
    device = torch.device(args.device)
    on_gpu = device.type == "cuda"
    dtype = torch.bfloat16 if on_gpu else torch.float32
    peak = matmul_peak(device, dtype)
    card = torch.cuda.get_device_name(device) if on_gpu else f"CPU, {torch.get_num_threads()} threads"
    print(json.dumps({"device": card, "dtype": str(dtype), "matmul_peak_tflops": round(peak / 1e12, 2)}), flush=True)
    rows = []
    for name in args.configs.split(","):
        rows += benchmark(name, device, args.notes or (2000 if on_gpu else 200),
                          args.batch_tokens or (16384 if on_gpu else 4096), peak, args.compile)
    print("\n| config | recipe | params (M) | padding | notes/s | MFU |\n|---|---|---|---|---|---|")
    for r in rows:
        print(f"| {r['config']} | {r['recipe']} | {r['params_m']} | {r['padding']:.1%} | "
              f"{r['notes_per_s']} | {r['mfu']:.1%} |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

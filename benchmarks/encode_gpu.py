"""Encoding throughput and MFU of NoteLLM-2: the authors' recipe against ours, same process.

    python benchmarks/encode_gpu.py --out results.json               # GPU: 1.5b and 7b (~6 min)
    python benchmarks/encode_gpu.py --device cpu --configs tiny,small # CPU figures

Random weights (no download), realistic prompts: 20-140 text tokens per note plus the mICL
image segment (16 visual tokens), every note with an image. Measured: the model's forward
over prepared inputs (tokens and pixel tensors ready), i.e. the accelerator's work; the
CPU-side preparation (image decoding, tokenising) is reported separately per core.

MFU = useful FLOPs / (seconds x measured matmul peak). Useful FLOPs count only non-padding
tokens: 2 x parameters x tokens for every linear layer, plus causal attention
(2 x layers x tokens^2 x hidden) for the LLM, and the same for the ViT and Q-Former.

Recipes (model-only, inputs prepared beforehand; the median of --repeats passes):
  authors   bf16 (fp32 on CPU), 50 notes per batch, sorted by length, right-padded, SDPA
  budget    the Encoder's: sorted by length, batches of up to --batch-tokens padded tokens
  compiled  budget with the vision tower and LLM torch.compile'd (EncoderSettings(compile=True));
            compilation time reported separately, outputs checked against eager
End to end (--end-to-end CONFIGS): the real path from a saved checkpoint and 1080 x 1440
JPEG bytes, `Encoder.encode_frames` over 512-note frames, while the model runs the images
are decoded and resized either by Pillow on --e2e-threads CPU threads (or worker processes
with --e2e-prepare-processes), or on the GPU by nvJPEG (--e2e-image-decode gpu): the notes/s
a Spark task with this GPU and these CPUs would get, and the share of time the model waited
for inputs. The issue-15 run (both configs, model alone and end to end, thread sweep, both
decoding paths, the processes run), about 10 minutes on an H100/H200:
    python benchmarks/encode_gpu.py --configs 1.5b,7b --end-to-end 1.5b,7b \
        --e2e-threads 1,2,4,8,16 --e2e-image-decode cpu,gpu --e2e-prepare-processes 0,8 \
        --notes 2000 --deadline-s 480 --out results.jsonl
"""

import argparse
import io
import json
import os
import statistics
import subprocess
import tempfile
import time
import traceback
from concurrent.futures import ThreadPoolExecutor

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

from notellm2_udf.inference.encoder import Encoder, compile_model, token_budget_batches
from notellm2_udf.inference.settings import EncoderSettings
from notellm2_udf.model.checkpoint import save_checkpoint
from notellm2_udf.model.compose import add_special_tokens
from notellm2_udf.model.configuration import NoteLLM2Config
from notellm2_udf.model.modeling import NoteLLM2Model
from notellm2_udf.model.processor import NoteLLM2Processor, PreparedNotes
from notellm2_udf.model.tiny_tokenizer import build_tiny_tokenizer

VIT_B16 = {"hidden_size": 768, "intermediate_size": 3072, "num_hidden_layers": 12,
           "num_attention_heads": 12, "image_size": 224, "patch_size": 16}
QFORMER_6 = {"hidden_size": 768, "intermediate_size": 3072, "num_hidden_layers": 6,
             "num_attention_heads": 12}
CONFIGS = {
    "tiny": (
        {"hidden_size": 32, "intermediate_size": 64, "num_hidden_layers": 2,
             "num_attention_heads": 4, "image_size": 32, "patch_size": 8},
        {"hidden_size": 32, "intermediate_size": 64, "num_hidden_layers": 2,
         "num_attention_heads": 4},
        Qwen2Config(hidden_size=32, intermediate_size=64, num_hidden_layers=2,
                    num_attention_heads=4, num_key_value_heads=2, vocab_size=300),
    ),
    "small": (
        {"hidden_size": 128, "intermediate_size": 512, "num_hidden_layers": 2,
             "num_attention_heads": 4, "image_size": 64, "patch_size": 16},
        {"hidden_size": 128, "intermediate_size": 512, "num_hidden_layers": 2,
         "num_attention_heads": 4},
        Qwen2Config(hidden_size=256, intermediate_size=1024, num_hidden_layers=4,
                    num_attention_heads=4, num_key_value_heads=2, vocab_size=2048),
    ),
    # Qwen2-1.5B-like LLM (1.3B non-embedding-heavy parameters), CLIP ViT-B/16, 6-layer Q-Former.
    "1.5b": (
        VIT_B16, QFORMER_6,
        Qwen2Config(hidden_size=1536, intermediate_size=8960, num_hidden_layers=28,
                    num_attention_heads=12, num_key_value_heads=2, vocab_size=151936),
    ),
    # LLaMA-2-7B-like LLM.
    "7b": (
        VIT_B16, QFORMER_6,
        LlamaConfig(hidden_size=4096, intermediate_size=11008, num_hidden_layers=32,
                    num_attention_heads=32, num_key_value_heads=32, vocab_size=32000),
    ),
}


def build(name: str, device: torch.device, dtype: torch.dtype):
    vision, qformer, text = CONFIGS[name]
    tokenizer = build_tiny_tokenizer()
    token_ids = add_special_tokens(tokenizer)
    config = NoteLLM2Config(vision_config=CLIPVisionConfig(**vision),
                            qformer_config=Blip2QFormerConfig(**qformer), text_config=text,
                            **token_ids)
    torch.manual_seed(0)
    with torch.device(device):
        model = NoteLLM2Model._from_config(config, dtype=dtype, attn_implementation="sdpa").eval()
    size = config.vision_config.image_size
    image_processor = CLIPImageProcessorPil(size={"shortest_edge": size},
                                            crop_size={"height": size, "width": size})
    return model, NoteLLM2Processor(tokenizer, image_processor, model.config)


def synthetic_notes(processor: NoteLLM2Processor, n: int, seed: int = 0) -> PreparedNotes:
    """n notes with 20-140 text-segment tokens (byte tokenizer: 1 token per ASCII byte)."""
    rng = np.random.default_rng(seed)
    template = processor.config.max_text_tokens - processor.field_token_budget
    text_tokens = rng.integers(20, 141, n)
    fields = [processor.prompt.prepare_fields("t", "x" * max(0, int(k) - template - 1), None)
              for k in text_tokens]
    has_image = np.ones(n, dtype=bool)
    input_ids, embedding_positions, visual_positions = processor.prompt.tokenize(fields, has_image)
    size = processor.image_size
    return PreparedNotes(
        input_ids=input_ids, lengths=embedding_positions + 1,
        embedding_positions=embedding_positions, visual_positions=visual_positions,
        image_ok=has_image, text_ok=has_image, image_error=[None] * n,
        pixel_values=torch.randint(0, 256, (n, 3, size, size), dtype=torch.uint8),
        image_index=np.arange(n),
    )


def photo_jpegs(count: int, seed: int = 0) -> list[bytes]:
    """1080 x 1440 JPEGs (quality 85) with photo-like smooth content: upscaled coarse noise
    plus grain. (Pure noise decodes several times slower than a real photo.)"""
    rng = np.random.default_rng(seed)
    jpegs = []
    for _ in range(count):
        coarse = Image.fromarray(rng.integers(0, 256, (48, 36, 3), dtype=np.uint8))
        pixels = np.asarray(coarse.resize((1080, 1440), Image.BICUBIC), dtype=np.int16)
        pixels = np.clip(pixels + rng.integers(-12, 13, pixels.shape), 0, 255).astype(np.uint8)
        buffer = io.BytesIO()
        Image.fromarray(pixels).save(buffer, "JPEG", quality=85)
        jpegs.append(buffer.getvalue())
    return jpegs


def photo_notes(count: int, jpegs: list[bytes], seed: int = 0) -> pd.DataFrame:
    """`notes` rows with 20-140-token texts and the given JPEGs in turn."""
    rng = np.random.default_rng(seed)
    words = rng.integers(3, 30, count)
    return pd.DataFrame({
        "dt": "2026-11-26",
        "note_id": [f"n{i}" for i in range(count)],
        "title": [f"Note {i} about a place" for i in range(count)],
        "content": [" ".join(["walk"] * int(k)) + " #travel#" for k in words],
        "topics": [["city"]] * count,
        "image": [jpegs[i % len(jpegs)] for i in range(count)],
    })


def preparation_rates(processor: NoteLLM2Processor, threads: int, notes_count: int = 256) -> dict:
    """Notes/s of `prepare_notes` on photo JPEGs (decode, resize, tokenise), 1 and N threads."""
    notes_pdf = photo_notes(notes_count, photo_jpegs(8))
    rates = {}
    for count in sorted({1, threads}):
        with ThreadPoolExecutor(count) as executor:
            start = time.perf_counter()
            processor.prepare_notes(notes_pdf, executor=executor)
            rates[f"preparation_notes_per_s_{count}_threads"] = round(
                notes_count / (time.perf_counter() - start), 1)
    return rates


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
    cross_layers = sum(1 for layer in model.connector.qformer.encoder.layer
                       if layer.has_cross_attention)
    kv_params = cross.key.weight.numel() + cross.value.weight.numel()
    qformer_flops = 2 * (linear_params(model.connector) - cross_layers * kv_params) * queries
    qformer_flops += 2 * cross_layers * kv_params * patches  # keys/values over the ViT tokens
    qformer_flops += (4 * qformer.num_hidden_layers * qformer.hidden_size
                      * queries * (queries + patches))
    projector = 2 * linear_params(model.projector) * queries
    return llm + len(tokens) * (vit + qformer_flops + projector)


def matmul_peak(device: torch.device, dtype: torch.dtype) -> float:
    """FLOP/s of a large square matmul, best of a few runs."""
    size = 8192 if device.type == "cuda" else 1024
    a, b = (torch.randn(size, size, device=device, dtype=dtype),
            torch.randn(size, size, device=device, dtype=dtype))
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


def collated(processor, notes, batches, device) -> list[dict]:
    return [processor.collate(notes, rows, device) for rows in batches]


def run_pass(model, inputs, device) -> float:
    """Seconds for one pass over the collated batches."""
    sync(device)
    start = time.perf_counter()
    with torch.inference_mode():
        for batch in inputs:
            model(**batch)
    sync(device)
    return time.perf_counter() - start


def first_batch_embeddings(model, inputs) -> torch.Tensor:
    with torch.inference_mode():
        return model(**inputs[0]).embedding.float()


class Stopwatch:
    """Wall time since the start, against a deadline that later stages check."""

    def __init__(self, deadline_s: float):
        self.start, self.deadline_s = time.perf_counter(), deadline_s

    def left(self) -> float:
        return self.deadline_s - (time.perf_counter() - self.start)


def recipe_row(name, recipe, notes, inputs, seconds, flops, peak, **extra) -> dict:
    padded = sum(x["input_ids"].numel() for x in inputs)
    return {"config": name, "recipe": recipe, "notes": len(notes.lengths), "batches": len(inputs),
            "padding": round(float(1 - notes.lengths.sum() / padded), 3),
            "notes_per_s": round(len(notes.lengths) / seconds, 1),
            "tokens_per_s": round(float(notes.lengths.sum()) / seconds),
            "mfu": round(flops / seconds / peak, 4), **extra}


def benchmark(name: str, device: torch.device, args, peak: float, clock: Stopwatch, emit) -> None:
    """The three recipes for one configuration, each row emitted as soon as measured."""
    dtype = torch.bfloat16 if device.type == "cuda" else torch.float32
    model, processor = build(name, device, dtype)
    emit({"config": name, "params_m": round(sum(p.numel() for p in model.parameters()) / 1e6, 1),
          **preparation_rates(processor, max(args.e2e_threads))})
    notes = synthetic_notes(processor, args.notes)
    flops = useful_flops(model, notes)
    budget = collated(processor, notes, token_budget_batches(notes.lengths, args.batch_tokens),
                      device)
    for recipe, inputs in (("authors", collated(processor, notes, authors_batches(notes.lengths),
                                                device)),
                           ("budget", budget)):
        run_pass(model, inputs[:2], device)  # kernels, allocator
        seconds = statistics.median(run_pass(model, inputs, device) for _ in range(args.repeats))
        emit(recipe_row(name, recipe, notes, inputs, seconds, flops, peak))
    if args.compile and clock.left() > 0:
        eager = first_batch_embeddings(model, budget)
        compile_model(model)
        started = time.perf_counter()
        run_pass(model, budget, device)  # compiles (dynamic shapes) and warms up
        compile_s = time.perf_counter() - started
        cosine = torch.nn.functional.cosine_similarity(eager, first_batch_embeddings(model, budget))
        seconds = statistics.median(run_pass(model, budget, device) for _ in range(args.repeats))
        emit(recipe_row(name, "compiled", notes, budget, seconds, flops, peak,
                        compile_s=round(compile_s, 1),
                        min_cosine_vs_eager=round(float(cosine.min()), 5)))
    del model, budget
    if device.type == "cuda":
        torch.cuda.empty_cache()


def end_to_end(name: str, device: torch.device, args, emit) -> None:
    """Checkpoint on disk -> Encoder -> encode_frames over JPEG notes, for every decoding
    path, CPU thread count and preparation-process count asked for."""
    dtype = torch.bfloat16 if device.type == "cuda" else torch.float32
    model, processor = build(name, device, dtype)
    emit({"config": name, "stage": "end_to_end",
          **preparation_rates(processor, max(args.e2e_threads))})
    notes_pdf = photo_notes(args.notes, photo_jpegs(16))
    frames = [notes_pdf.iloc[i:i + 512] for i in range(0, len(notes_pdf), 512)]
    with tempfile.TemporaryDirectory() as checkpoint:
        save_checkpoint(model, processor, checkpoint)
        del model
        for variant in e2e_variants(args):
            run_end_to_end(name, checkpoint, frames, device, args, emit, **variant)


def e2e_variants(args) -> list[dict]:
    """Thread sweep for both decoding paths; the processes runs with Pillow decoding."""
    variants = [{"compiled": compiled, "image_decode": decode, "threads": threads,
                 "processes": 0}
                for compiled in ((False, True) if args.compile else (False,))
                for decode in args.e2e_image_decode for threads in args.e2e_threads]
    variants += [{"compiled": False, "image_decode": "cpu", "threads": max(args.e2e_threads),
                  "processes": processes}
                 for processes in args.e2e_prepare_processes if processes]
    return variants


def run_end_to_end(name, checkpoint, frames, device, args, emit, *, compiled, image_decode,
                   threads, processes) -> None:
    # Torch's own host threads follow the decoding threads: a task owning N CPUs uses N.
    torch.set_num_threads(threads)
    started = time.perf_counter()
    encoder = Encoder(checkpoint, device, EncoderSettings(
        batch_tokens=args.batch_tokens, threads=threads, compile=compiled,
        prepare_processes=processes, image_decode=image_decode))
    for _ in encoder.encode_frames(frames[:1]):  # load, compile, warm up
        pass
    ready_s = time.perf_counter() - started
    started = time.perf_counter()
    results = [result for _, result in encoder.encode_frames(frames)]
    seconds = time.perf_counter() - started
    encoded = sum(len(result.embeddings) for result in results)
    waiting = sum(result.input_wait_s for result in results)
    working = sum(result.encode_s for result in results)
    emit({"config": name, "recipe": "end_to_end" + ("_compiled" if compiled else ""),
          "image_decode": encoder.image_decode, "notes": encoded, "threads": threads,
          "prepare_processes": processes, "load_and_warmup_s": round(ready_s, 1),
          "notes_per_s": round(encoded / seconds, 1),
          "input_wait_share": round(waiting / max(waiting + working, 1e-9), 3)})
    encoder.close()
    del encoder
    if device.type == "cuda":
        torch.cuda.empty_cache()


def guarded(stage: str, clock: Stopwatch, emit, body) -> None:
    """Runs one stage unless the deadline has passed; a failure is reported, not fatal."""
    if clock.left() <= 0:
        emit({"stage": stage, "skipped": "deadline"})
        return
    try:
        body()
    except Exception as err:  # noqa: BLE001 - later stages still run and report
        traceback.print_exc()
        emit({"stage": stage, "error": f"{type(err).__name__}: {err}"})


def print_table(rows: list[dict]) -> None:
    print("\n| config | recipe | padding | notes/s | MFU | compile s |\n|---|---|---|---|---|---|")
    for r in rows:
        if "recipe" in r:
            padding = f"{r['padding']:.1%}" if "padding" in r else ""
            mfu = f"{r['mfu']:.1%}" if "mfu" in r else ""
            compile_s = r.get("compile_s", r.get("load_and_warmup_s", ""))
            print(f"| {r['config']} | {r['recipe']} | {padding} | {r['notes_per_s']} | {mfu} "
                  f"| {compile_s} |")


def driver_version() -> str | None:
    """The NVIDIA driver's version, from nvidia-smi (None without one)."""
    try:
        completed = subprocess.run(
            ["nvidia-smi", "--query-gpu=driver_version", "--format=csv,noheader"],
            capture_output=True, text=True, timeout=30)
    except (OSError, subprocess.SubprocessError):
        return None
    return completed.stdout.strip().splitlines()[0] if completed.returncode == 0 else None


def int_list(text: str) -> list[int]:
    return [int(item) for item in text.split(",")]


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--configs", default="1.5b,7b", help=f"comma-separated, of {list(CONFIGS)}")
    parser.add_argument("--notes", type=int, default=None,
                        help="notes per config (default 2000 GPU, 200 CPU)")
    parser.add_argument("--batch-tokens", type=int, default=None,
                        help="budget recipe (default 16384 GPU, 4096 CPU)")
    parser.add_argument("--repeats", type=int, default=3, help="timed passes per recipe (median)")
    parser.add_argument("--no-compile", dest="compile", action="store_false",
                        help="skip the compiled recipe")
    parser.add_argument("--end-to-end", default="", metavar="CONFIGS",
                        help="also run the end-to-end path of these configs, comma-separated")
    parser.add_argument("--e2e-threads", default=str(os.cpu_count()), type=int_list,
                        help="CPU threads (decoding and torch) of the end-to-end runs, "
                             "comma-separated: a sweep")
    parser.add_argument("--e2e-image-decode", default="cpu",
                        type=lambda text: text.split(","),
                        help="decoding paths of the end-to-end runs: cpu,gpu")
    parser.add_argument("--e2e-prepare-processes", default="0", type=int_list,
                        help="also run with EncoderSettings(prepare_processes=N), "
                             "comma-separated (0 = none)")
    parser.add_argument("--deadline-s", type=float, default=float("inf"),
                        help="start no new stage after this many seconds")
    parser.add_argument("--out", default=None, help="JSON lines file for the results")
    args = parser.parse_args(argv)
    device = torch.device(args.device)
    on_gpu = device.type == "cuda"
    args.notes = args.notes or (2000 if on_gpu else 200)
    args.batch_tokens = args.batch_tokens or (16384 if on_gpu else 4096)
    dtype = torch.bfloat16 if on_gpu else torch.float32
    clock, rows = Stopwatch(args.deadline_s), []

    def emit(row: dict) -> None:
        rows.append(row)
        print(json.dumps(row), flush=True)
        if args.out:
            with open(args.out, "a") as out:
                out.write(json.dumps(row) + "\n")

    peak = matmul_peak(device, dtype)
    card = (torch.cuda.get_device_name(device) if on_gpu
            else f"CPU, {torch.get_num_threads()} threads")
    emit({"device": card, "driver": driver_version(), "dtype": str(dtype),
          "matmul_peak_tflops": round(peak / 1e12, 2), "torch": torch.__version__,
          "cuda": torch.version.cuda, "cpus": os.cpu_count(),
          "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())})
    for name in filter(None, args.configs.split(",")):
        # guarded calls the lambda at once, inside this iteration: the late binding is harmless.
        guarded(name, clock, emit, lambda: benchmark(name, device, args, peak, clock, emit))  # noqa: B023
    for name in filter(None, args.end_to_end.split(",")):
        guarded(f"end_to_end {name}", clock, emit,
                lambda: end_to_end(name, device, args, emit))  # noqa: B023
    print_table(rows)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

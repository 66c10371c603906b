"""One step's loss and gradients over the global batch, in one pass or by GradCache, and
the pieces the validation pass shares with it (sub-batches, autocast, partner indices)."""

from __future__ import annotations

from notellm2_udf.training.settings import TrainSettings


def step_gradients(model, inputs: dict, temperature, settings: TrainSettings,
                   processes: int) -> dict:
    """Forward and backward of one step's loss over the global batch; gradients accumulate
    in the parameters (this process's part of them). Returns the losses.

    With sub_batch_pairs smaller than the local batch this is GradCache (Gao et al. 2021):
    1. embed the notes sub-batch by sub-batch without a graph, keeping only the embeddings;
    2. compute the loss over all (gathered) embeddings and its gradient w.r.t. them;
    3. re-run each sub-batch with a graph, RNG state restored so that dropout draws the same
       masks, and back-propagate the cached embedding gradients through it.
    The loss and the gradients are those of the one-pass step (up to float summation order);
    activations are held for one sub-batch at a time.
    """
    import torch

    notes = inputs["input_ids"].shape[0]
    chunk = 2 * settings.sub_batch_pairs if settings.sub_batch_pairs else notes
    mixed_precision = autocast(inputs)

    def loss_of(embedding, visual_embedding):
        return global_loss(model, inputs, embedding, visual_embedding, temperature, settings,
                            processes)

    if chunk >= notes:
        with mixed_precision:
            output = model(**inputs)
        losses = loss_of(output.embedding, output.visual_embedding)
        losses["loss"].backward()
        return losses

    chunks = parts(notes, chunk)
    rng_states, embeddings, visual_embeddings = [], [], []
    with torch.no_grad():
        for rows in chunks:
            rng_states.append(_rng_state())
            with mixed_precision:
                output = model(**sub_batch(inputs, rows))
            embeddings.append(output.embedding)
            visual_embeddings.append(output.visual_embedding)
    embedding = torch.cat(embeddings).requires_grad_()
    visual_embedding = torch.cat(visual_embeddings).requires_grad_()
    losses = loss_of(embedding, visual_embedding)
    losses["loss"].backward()
    after = _rng_state()
    for rows, state in zip(chunks, rng_states):
        _set_rng_state(state)
        with mixed_precision:
            output = model(**sub_batch(inputs, rows))
        surrogate = (output.embedding * embedding.grad[rows]).sum()
        if visual_embedding.grad is not None:
            surrogate = surrogate + (output.visual_embedding * visual_embedding.grad[rows]).sum()
        surrogate.backward()
    _set_rng_state(after)
    return {name: value.detach() for name, value in losses.items()}


def global_loss(model, inputs: dict, embedding, visual_embedding, temperature,
                 settings: TrainSettings, processes: int) -> dict:
    """The step's losses over the embeddings of every process (this one's keep their graph)."""
    from notellm2_udf.training import distributed
    from notellm2_udf.training.loss import training_loss

    return training_loss(
        distributed.gather_with_local_grad(embedding),
        distributed.gather_with_local_grad(visual_embedding),
        # gloo has no bool all_gather
        distributed.gather_with_local_grad(inputs["has_image"].long()).bool(),
        global_partners(settings.batch_pairs, processes, embedding.device),
        temperature.scale(), model.config.uses_micl,
        weights=(settings.text_weight, settings.vision_weight))


def autocast(inputs: dict):
    import torch

    return torch.autocast("cuda", dtype=torch.bfloat16,
                          enabled=inputs["input_ids"].device.type == "cuda")


def parts(notes: int, chunk: int) -> list:
    import torch

    return [torch.arange(start, min(start + chunk, notes)) for start in range(0, notes, chunk)]


def sub_batch(inputs: dict, rows) -> dict:
    """The model inputs of `rows` of a batch (pixel_values hold the rows with an image)."""
    has_image = inputs["has_image"]
    image_index = has_image.long().cumsum(0) - 1
    picked = has_image[rows]
    length = int(inputs["embedding_positions"][rows].max()) + 1
    return {"input_ids": inputs["input_ids"][rows, :length],
            "embedding_positions": inputs["embedding_positions"][rows],
            "visual_positions": inputs["visual_positions"][rows],
            "has_image": picked,
            "pixel_values": inputs["pixel_values"][image_index[rows][picked]]}


def _rng_state() -> tuple:
    import torch

    cuda = torch.cuda.get_rng_state_all() if torch.cuda.is_initialized() else None
    return torch.get_rng_state(), cuda


def _set_rng_state(state: tuple) -> None:
    import torch

    cpu, cuda = state
    torch.set_rng_state(cpu)
    if cuda is not None:
        torch.cuda.set_rng_state_all(cuda)


def global_partners(batch_pairs: int, processes: int, device):
    """Partner indices over the gathered batch: each rank's block is [firsts; partners]."""
    import torch

    from notellm2_udf.training.loss import pair_partners

    return torch.cat([pair_partners(batch_pairs, device) + rank * 2 * batch_pairs
                      for rank in range(processes)])

import numpy as np
import pandas as pd
import pytest
import torch

from notellm2_udf import Encoder
from notellm2_udf.inference.encoder import EncodeResult, token_budget_batches
from notellm2_udf.inference.preparation import ProcessPreparer
from notellm2_udf.inference.settings import EncoderSettings
from tests.support.notes import image_bytes, mixed_notes, notes_frame
from tests.support.tolerances import EMBEDDING_ATOL, NORM_ATOL, SAME_BATCH_ATOL


def test_token_budget_batches_cover_every_row_once_longest_first():
    lengths = np.array([30, 120, 45, 120, 10, 80, 300])
    batches = token_budget_batches(lengths, batch_tokens=250)
    assert sorted(np.concatenate(batches).tolist()) == list(range(7))
    assert [b.tolist() for b in batches] == [[6], [1, 3], [5, 2, 0], [4]]
    for batch in batches[1:]:
        assert len(batch) * lengths[batch].max() <= 250


def test_encode_returns_float32_unit_vectors_in_input_order(tiny_encoder):
    notes = mixed_notes()
    embeddings, visual = tiny_encoder.encode(notes)
    assert embeddings.shape == visual.shape == (8, 64)
    assert embeddings.dtype == visual.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(embeddings, axis=1), 1, atol=NORM_ATOL)
    # Reversing the input reverses the output: order is restored after length sorting.
    reversed_embeddings, _ = tiny_encoder.encode(notes.iloc[::-1].reset_index(drop=True))
    np.testing.assert_allclose(reversed_embeddings[::-1], embeddings, atol=EMBEDDING_ATOL)


def test_a_notes_embedding_does_not_depend_on_its_batch(tiny_checkpoint):
    notes = mixed_notes()
    together = Encoder(tiny_checkpoint, "cpu",
                       EncoderSettings(batch_tokens=100_000)).encode(notes)
    one_by_one = Encoder(tiny_checkpoint, "cpu", EncoderSettings(batch_tokens=1))
    alone = [one_by_one.encode(notes.iloc[[i]]) for i in range(len(notes))]
    for part in (0, 1):
        np.testing.assert_allclose(np.concatenate([a[part] for a in alone]), together[part],
                                   atol=EMBEDDING_ATOL)


def test_encoding_is_deterministic_on_cpu(tiny_encoder):
    first, second = tiny_encoder.encode(mixed_notes()), tiny_encoder.encode(mixed_notes())
    assert np.array_equal(first[0], second[0]) and np.array_equal(first[1], second[1])


def test_small_chunks_give_the_same_result(tiny_checkpoint, tiny_encoder):
    chunked = Encoder(tiny_checkpoint, "cpu", EncoderSettings(chunk_rows=3)).encode(mixed_notes())
    np.testing.assert_allclose(chunked[0], tiny_encoder.encode(mixed_notes())[0],
                               atol=EMBEDDING_ATOL)


def test_encode_detailed_flags_missing_modalities(tiny_checkpoint):
    notes = notes_frame([
        {"title": "fine", "image": image_bytes(1)},
        {"title": "broken image", "image": image_bytes(9, size=(64, 64))[:200]},
        {"title": "", "content": None, "topics": None, "image": None},
        {"title": "", "content": "", "image": image_bytes(2)},
        {"title": "huge", "image": image_bytes(3, size=(400, 300))},
    ])
    encoder = Encoder(tiny_checkpoint, "cpu", EncoderSettings(max_image_pixels=100_000))
    result = encoder.encode_detailed(notes)
    assert isinstance(result, EncodeResult)
    assert result.image_ok.tolist() == [True, False, False, True, False]
    assert result.text_ok.tolist() == [True, True, False, False, True]
    assert result.has_content.tolist() == [True, True, False, True, True]
    assert result.image_error[0] is None and result.image_error[2] is None
    assert result.image_error[1].startswith("corrupt or truncated")
    assert result.image_error[4] == "too many pixels: 400x300 > 100000"
    # No content: zero vectors (the Spark job turns them into error rows).
    assert not result.embeddings[2].any() and not result.visual_embeddings[2].any()
    np.testing.assert_allclose(np.linalg.norm(result.embeddings[[0, 1, 3, 4]], axis=1), 1,
                               atol=NORM_ATOL)
    # Rows without a usable image share the no-image visual embedding.
    np.testing.assert_allclose(result.visual_embeddings[1], result.visual_embeddings[4],
                               atol=SAME_BATCH_ATOL)


def test_encoder_exposes_version_and_device(tiny_encoder, tiny_checkpoint):
    from notellm2_udf.model.checkpoint import model_version

    assert tiny_encoder.model_version == model_version(tiny_checkpoint)
    assert tiny_encoder.device.type == "cpu"


def test_empty_frame(tiny_encoder):
    result = tiny_encoder.encode_detailed(notes_frame([]))
    assert result.embeddings.shape == (0, 64) and result.image_error == []


def test_topics_as_numpy_arrays_like_arrow_gives_the_same_as_lists(tiny_encoder):
    as_list = notes_frame([{"title": "t", "topics": ["a", "b"]}])
    as_array = as_list.assign(topics=pd.Series([np.array(["a", "b"], dtype=object)]))
    np.testing.assert_array_equal(tiny_encoder.encode(as_list)[0], tiny_encoder.encode(as_array)[0])


def test_decoding_threads_and_prefetched_chunks_give_identical_results(tiny_checkpoint):
    notes = pd.concat([mixed_notes()] * 4, ignore_index=True)
    # Seven chunks: each is prepared in the background while the one before is encoded.
    one_thread = Encoder(tiny_checkpoint, "cpu", EncoderSettings(threads=1, chunk_rows=5))
    four_threads = Encoder(tiny_checkpoint, "cpu", EncoderSettings(threads=4, chunk_rows=5))
    expected, result = one_thread.encode_detailed(notes), four_threads.encode_detailed(notes)
    # The same batches of the same rows: bit-identical on a CPU, whatever the threads did.
    assert np.array_equal(result.embeddings, expected.embeddings)
    assert np.array_equal(result.visual_embeddings, expected.visual_embeddings)
    assert result.image_error == expected.image_error
    assert np.array_equal(result.image_ok, expected.image_ok)
    whole = one_thread.encode(mixed_notes())
    for copy in range(4):
        np.testing.assert_allclose(result.embeddings[8 * copy:8 * copy + 8], whole[0],
                                   atol=EMBEDDING_ATOL)


def test_an_empty_frame_encodes_to_nothing(tiny_encoder):
    result = tiny_encoder.encode_detailed(mixed_notes().iloc[:0])
    assert result.embeddings.shape == (0, 64) and result.image_error == []


def test_encode_frames_streams_frames_in_order_reading_one_chunk_ahead(tiny_checkpoint):
    notes = mixed_notes()
    frames = [notes.iloc[0:3], notes.iloc[3:3], notes.iloc[3:8], notes.iloc[0:2]]
    pulled = []

    def source():
        for frame in frames:
            pulled.append(len(frame))
            yield frame

    encoder = Encoder(tiny_checkpoint, "cpu", EncoderSettings(chunk_rows=2))
    stream = encoder.encode_frames(source())
    first_frame, first = next(stream)
    # Frame 0 (3 rows) is two chunks; its result comes once the first chunk of frame 2 is
    # being prepared: frames are pulled lazily, not all at once.
    assert first_frame is frames[0] and pulled == [3, 0, 5]
    rest = list(stream)
    assert [frame is expected for (frame, _), expected in zip(rest, frames[1:])] == [True] * 3
    results = [first] + [result for _, result in rest]
    assert [len(r.embeddings) for r in results] == [3, 0, 5, 2]
    for frame, result in zip(frames, results):
        alone = encoder.encode_detailed(frame)
        np.testing.assert_allclose(result.embeddings, alone.embeddings, atol=EMBEDDING_ATOL)
        assert result.image_error == alone.image_error


@pytest.mark.slow
def test_a_compiled_encoder_matches_the_eager_one(tiny_checkpoint, tiny_encoder):
    compiled = Encoder(tiny_checkpoint, "cpu", EncoderSettings(compile=True))
    notes = mixed_notes()
    for got, expected in zip(compiled.encode(notes), tiny_encoder.encode(notes)):
        np.testing.assert_allclose(got, expected, atol=EMBEDDING_ATOL)


def test_preparing_in_worker_processes_gives_identical_results(tiny_checkpoint, tiny_encoder):
    notes = pd.concat([mixed_notes()] * 3, ignore_index=True)
    processes = Encoder(tiny_checkpoint, "cpu",
                        EncoderSettings(chunk_rows=10, prepare_processes=2))
    try:
        got = processes.encode_detailed(notes)
    finally:
        processes.close()
    expected = Encoder(tiny_checkpoint, "cpu",
                       EncoderSettings(chunk_rows=10)).encode_detailed(notes)
    assert np.array_equal(got.embeddings, expected.embeddings)
    assert np.array_equal(got.visual_embeddings, expected.visual_embeddings)
    assert got.image_error == expected.image_error
    assert np.array_equal(got.image_ok, expected.image_ok)


def test_a_process_preparer_matches_the_processor_slice_by_slice(tiny_checkpoint, tiny_encoder):
    notes = pd.concat([mixed_notes(), notes_frame([
        {"title": "huge", "image": image_bytes(3, size=(400, 300))},
        {"title": "broken", "image": image_bytes(9, size=(64, 64))[:200]},
    ])] * 2, ignore_index=True)
    preparer = ProcessPreparer(tiny_checkpoint,
                               EncoderSettings(prepare_processes=3, max_image_pixels=100_000))
    try:
        got = preparer.prepare(notes)
        with pytest.raises(ValueError, match="no notes to prepare"):
            preparer.prepare(notes.iloc[:0])
    finally:
        preparer.close()
    expected = tiny_encoder.processor.prepare_notes(notes, max_image_pixels=100_000)
    assert got.image_error == expected.image_error
    assert got.image_error[8] == "too many pixels: 400x300 > 100000"
    assert np.array_equal(got.image_index, expected.image_index)
    assert torch.equal(got.pixel_values, expected.pixel_values)
    assert all(np.array_equal(a, b) for a, b in zip(got.input_ids, expected.input_ids))
    for name in ("lengths", "embedding_positions", "visual_positions", "image_ok", "text_ok"):
        assert np.array_equal(getattr(got, name), getattr(expected, name)), name

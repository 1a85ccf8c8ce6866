"""Folded frame tiers (generation): the same step as the model's projection + RNN stack."""
import numpy as np
import pytest
import tensorflow as tf

from audiogen.kernels import stream_matmul
from audiogen.samplernn import SampleRNN
from audiogen.samplernn.folded_tiers import fold_tiers, stream_products
from compiled_ops import require_op


def model_with(**overrides):
    config = dict(frame_sizes=[4, 16], dim=16, rnn_type="gru", num_rnn_layers=3,
                  q_type="linear", q_levels=16, emb_size=8, skip_conn=False)
    model = SampleRNN(**{**config, **overrides})
    model.build()
    rng = np.random.default_rng(0)
    for v in model.trainable_variables:          # biases too: the fold moves them
        v.assign(rng.normal(0, 0.3, v.shape).astype(np.float32))
    return model


@pytest.mark.parametrize("overrides", [{}, {"rnn_type": "lstm", "skip_conn": True},
                                       {"skip_conn": True, "frame_sizes": [2, 4, 8]}])
def test_folded_steps_equal_projection_and_stack(overrides):
    model = model_with(**overrides)
    tiers, batch = model.tiers, 3
    folded = fold_tiers(tiers)
    rng = np.random.default_rng(1)
    cond, terms = None, None
    for k, tier in enumerate(tiers):
        frame = tf.constant(rng.uniform(-1, 1, [batch, tier.frame_size]).astype(np.float32))
        states = [tf.constant(rng.normal(size=[batch, tier.dim]).astype(np.float32))
                  for _ in range(tier.rnn.num_states)]
        expected, expected_states = tier.rnn.step(tier.project(frame, cond), states)
        out, new_states = folded[k].step(frame, terms, states)
        np.testing.assert_allclose(out.numpy(), expected.numpy(), atol=1e-5)
        for a, b in zip(new_states, expected_states):
            np.testing.assert_allclose(a.numpy(), b.numpy(), atol=1e-5)
        if k + 1 < len(tiers):
            ratio = tier.upsample_ratio
            cond = tf.reshape(tier.upsample(expected), [batch, ratio, tier.dim])[:, 1]
            terms = [t[:, 1] for t in folded[k].conditioning_terms(expected, folded[k + 1])]
            assert len(terms) == len(tiers[k + 1].rnn.input_kernels)


def test_stream_products_route_each_kernel_through_the_op(monkeypatch):
    """Every kernel a folded step multiplies by goes through StreamMatMul (packed for its
    rows); the top tier's input kernel, folded away, is not packed; results equal `dot`."""
    op = require_op("stream_matmul")
    model = model_with(skip_conn=True)
    tiers = model.tiers
    calls = []
    original = stream_matmul.stream_matmul

    def counting(op_module, x, packed, n):
        calls.append((x.shape[0], n))
        return original(op_module, x, packed, n)

    monkeypatch.setattr(stream_matmul, "stream_matmul", counting)
    product = stream_products(op, tiers, batch=2)
    x = tf.constant(np.random.default_rng(2).normal(size=[2, 16]).astype(np.float32))
    top_input = tiers[0].rnn.input_kernels[0]
    np.testing.assert_allclose(product(x, top_input, tf.float32).numpy(),
                               (x @ top_input).numpy(), atol=1e-5)
    assert calls == []                                   # through `dot`
    lower_input = tiers[1].rnn.input_kernels[0]
    rows = tf.concat([x] * tiers[0].upsample_ratio, 0)       # 2 sequences x 4 vectors
    np.testing.assert_allclose(product(rows, lower_input, tf.float32).numpy(),
                               (rows @ lower_input).numpy(), atol=1e-5)
    recurrent = tiers[0].rnn.recurrent_kernel_1
    np.testing.assert_allclose(product(x, recurrent, tf.float32).numpy(),
                               (x @ recurrent).numpy(), atol=1e-5)
    assert calls == [(8, lower_input.shape[1]), (2, recurrent.shape[1])]

"""The carol model's arithmetic in numpy, layer by layer as carolgen/model.py builds it in Keras.

    features  = embedding[chars]                  (the seed architecture feeds index / V as one feature)
    LSTM      z = x @ kernel + h @ recurrent + bias;  i, f, g, o = split(z, 4)
              c = sigmoid(f) * c + sigmoid(i) * tanh(g);  h = sigmoid(o) * tanh(c)
    attention score_s = h_t . (h_s @ W)  = (h_t @ W^T) . h_s   over the window's hidden states h_s
              a = softmax(scores);  context = sum_s a_s h_s
    output    probs = softmax(tanh([context, h_t] @ attention_vector) @ output + output_bias)

A windowed file runs the LSTM over its window from a zero state; a step file runs one LSTM step and keeps
(c, the last `window` hidden states) as its state, rows laid out as build_step_model lays them out.
Everything is float32; quantised weights were dequantised when read (runtime/weights.py).
"""
import numpy as np


def sigmoid(x):
    return 0.5 * (1.0 + np.tanh(0.5 * x))  # = 1 / (1 + e^-x), without overflow for large |x|


def softmax(x):
    e = np.exp(x - x.max(axis=-1, keepdims=True))
    return e / e.sum(axis=-1, keepdims=True)


def features(weights, chars):
    """(..., features) model input: embedded indices, or the seed's (..., 1) floats as they come."""
    return chars if weights.embedding is None else weights.embedding[chars]


def lstm_step(weights, x_projected, h, c):
    """One LSTM step given x @ kernel + bias; returns (h, c). The sigmoid runs over all four gates at once
    (one numpy call instead of three: this loop is the windowed file's whole cost); g uses its own tanh."""
    z = x_projected + h @ weights.recurrent
    units = h.shape[-1]
    gates = sigmoid(z)
    i, f, o = gates[..., :units], gates[..., units:2 * units], gates[..., 3 * units:]
    c = f * c + i * np.tanh(z[..., 2 * units:3 * units])
    return o * np.tanh(c), c


def head(weights, hidden, h):
    """(probabilities (B, V), attention weights (B, W)) from the hidden states (B, W, U) and the last h (B, U)."""
    query = h @ weights.attention.T
    attention = softmax(np.einsum("bwu,bu->bw", hidden, query))
    context = np.einsum("bw,bwu->bu", attention, hidden)
    attended = np.tanh(np.concatenate([context, h], axis=-1) @ weights.attention_vector)
    return softmax(attended @ weights.output + weights.output_bias), attention


def window_probs(weights, windows):
    """A windowed file's computation: (probabilities, attention) for windows (B, window[, 1])."""
    projected = features(weights, windows) @ weights.kernel + weights.bias  # every step's input part at once
    batch, window, units = projected.shape[0], projected.shape[1], weights.recurrent.shape[0]
    h = c = np.zeros((batch, units), np.float32)
    hidden = np.empty((batch, window, units), np.float32)
    for t in range(window):
        h, c = lstm_step(weights, projected[:, t], h, c)
        hidden[:, t] = h
    return head(weights, hidden, h)


def step(weights, chars, state):
    """A step file's computation: (probabilities, next state, attention) for chars (B[, 1]) and state
    (B, window + 1, U): row 0 the cell state, rows 1.. the last `window` hidden states, oldest first."""
    projected = features(weights, chars) @ weights.kernel + weights.bias
    h, c = lstm_step(weights, projected, state[:, -1], state[:, 0])
    next_state = np.concatenate([c[:, None], state[:, 2:], h[:, None]], axis=1)
    probs, attention = head(weights, next_state[:, 1:], h)
    return probs, next_state, attention

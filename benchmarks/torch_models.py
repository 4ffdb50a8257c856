"""Plain PyTorch implementations of two mmer_jax models, written for the throughput comparison.

Used by ``benchmarks/train_compare_torch.py``; nothing in the package imports this file, and
torch is an optional dependency (``pip install -e ".[bench]"``).

- :class:`S002Torch`: S002 with the paper's text path (``experiments/s002_iemocap_text_paper.py``):
  embedding 300 -> dropout -> 2-layer BiLSTM 128 -> max over the real words -> dropout -> 2-layer
  dialogue BiLSTM 128 -> ``LayerNorm(F + dropout(MHA_4(F)))`` -> dropout -> linear head.
- :class:`QuickstartTorch`: the quickstart's fused model (``experiments/quickstart.py``): log-mel
  (computed in the step, as mmer_jax computes it on the device) -> 2-stage ResNet (BatchNorm);
  frames -> per-frame CNN (GroupNorm) + LSTM 64; tokens -> embedding 32 + BiLSTM 32 with mean and
  max pooling; concatenation -> MLP head (64).

Both take the host batches of mmer_jax's pipelines (converted with :func:`to_torch`) and skip
padding the way a PyTorch user would: ``pack_padded_sequence`` over the real steps of the real
rows only. Layer sizes equal mmer_jax's; parameter counts differ only by PyTorch's second LSTM
bias (``b_hh``, 4 x hidden per direction and layer), which Flax's ``OptimizedLSTMCell`` does not
have (:func:`lstm_bias_surplus` counts it).
"""

from __future__ import annotations

import math

import numpy as np
import torch
from torch import nn
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence


def to_torch(batch: dict, device: str = "cpu") -> dict:
    """Host batch (numpy arrays) -> dict of torch tensors on ``device`` (int16 and uint8 kept).

    Raises:
      TypeError: a value numpy cannot turn into an array of a torch dtype.
    """
    return {k: torch.from_numpy(np.ascontiguousarray(v)).to(device) for k, v in batch.items()}


def count_params(model: nn.Module) -> int:
    """Number of trainable parameters (BatchNorm running statistics are buffers, not counted)."""
    return sum(p.numel() for p in model.parameters() if p.requires_grad)


def lstm_bias_surplus(model: nn.Module) -> int:
    """Parameters of ``model``'s ``nn.LSTM`` ``bias_hh_*`` tensors: PyTorch's second LSTM bias,
    which a Flax LSTM cell does not have (so torch count - this = the Flax count)."""
    return sum(p.numel() for m in model.modules() if isinstance(m, nn.LSTM)
               for name, p in m.named_parameters() if name.startswith("bias_hh"))


def masked_max(x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Max over dim 1 of x [N, T, D] over mask [N, T]; zeros for a row with no valid step."""
    y = x.masked_fill(~mask[..., None], float("-inf")).amax(1)
    return torch.where(mask.any(1, keepdim=True), y, torch.zeros_like(y))


def masked_mean(x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Mean over dim 1 of x [N, T, D] counting the mask [N, T] positions; zeros when none."""
    m = mask[..., None].to(x.dtype)
    return (x * m).sum(1) / m.sum(1).clamp(min=1.0)


def run_lstm(lstm: nn.LSTM, x: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
    """A batch-first ``nn.LSTM`` over the first ``lengths[n]`` steps of each row of x [N, T, D].

    Rows of length 0 are left out of the packed batch. Returns [N, T, H * directions] with zeros
    past each length and in empty rows.
    """
    n, t = x.shape[:2]
    rows = torch.nonzero(lengths > 0).squeeze(1)
    packed = pack_padded_sequence(x.index_select(0, rows), lengths.index_select(0, rows).cpu(),
                                  batch_first=True, enforce_sorted=False)
    out, _ = lstm(packed)
    out, _ = pad_packed_sequence(out, batch_first=True, total_length=t)
    if rows.numel() == n:
        return out
    return x.new_zeros((n, t, out.shape[-1])).index_copy(0, rows, out)


class S002Torch(nn.Module):
    """S002, the paper's text path: (tokens [B, U, L], utt_mask [B, U]) -> logits [B, U, C].

    Args:
      vocab_size: embedding rows (token 0 is padding).
      num_classes: C.
      embed_dim, hidden, layers: word and dialogue BiLSTMs (hidden per direction).
      num_heads: attention heads over the 2 * hidden context features.
      dropout: on the embeddings, the utterance features, the attention output and the head input.
    """

    def __init__(self, vocab_size: int, num_classes: int, embed_dim: int = 300, hidden: int = 128,
                 layers: int = 2, num_heads: int = 4, dropout: float = 0.3):
        super().__init__()
        self.embed = nn.Embedding(vocab_size, embed_dim)  # N(0, 1), as the config asks
        self.word_lstm = nn.LSTM(embed_dim, hidden, layers, batch_first=True, bidirectional=True)
        self.context = nn.LSTM(2 * hidden, hidden, layers, batch_first=True, bidirectional=True)
        self.mha = nn.MultiheadAttention(2 * hidden, num_heads, batch_first=True)
        self.norm = nn.LayerNorm(2 * hidden)
        self.head_out = nn.Linear(2 * hidden, num_classes)
        # mmer_jax's S002 has an auxiliary utterance classifier (used only with
        # train.aux_loss_weight > 0, which is 0 here): its parameters, never called.
        self.aux_head = nn.Linear(2 * hidden, num_classes)
        self.drop = nn.Dropout(dropout)

    def forward(self, tokens: torch.Tensor, utt_mask: torch.Tensor) -> torch.Tensor:
        """tokens [B, U, L] int (0 = padding), utt_mask [B, U] bool -> logits [B, U, C]."""
        b, u, length = tokens.shape
        words = (tokens > 0) & utt_mask[..., None]  # [B, U, L]
        flat_words = words.reshape(b * u, length)
        e = self.drop(self.embed(tokens.reshape(b * u, length)))  # [BU, L, E]
        h = run_lstm(self.word_lstm, e, flat_words.sum(1))  # [BU, L, 2h]
        feats = masked_max(h, flat_words).reshape(b, u, -1)  # [B, U, 2h]
        feats = self.drop(feats)
        f = run_lstm(self.context, feats, utt_mask.sum(1))  # [B, U, 2h]
        a, _ = self.mha(f, f, f, key_padding_mask=~utt_mask, need_weights=False)
        hh = self.norm(f + self.drop(a)) * utt_mask[..., None]
        return self.head_out(self.drop(hh))


class LogMelTorch(nn.Module):
    """mmer_jax's on-device log-mel front end in torch: (pcm int16 [B, N], lengths [B]) ->
    (features [B, T, n_mels], mask [B, T]), T = 1 + N // hop, per-utterance mean/variance
    normalised over the valid frames (``data.feature_norm``).

    Args:
      fb: [n_fft // 2 + 1, n_mels] mel filterbank (mmer_jax.data.features.mel_filterbank).
      n_fft, hop: samples.
      eps: added to the mel power before the log.
    """

    def __init__(self, fb: np.ndarray, n_fft: int = 400, hop: int = 160, eps: float = 1e-6):
        super().__init__()
        self.n_fft, self.hop, self.eps = n_fft, hop, eps
        self.register_buffer("fb", torch.from_numpy(np.asarray(fb, np.float32)))
        n = torch.arange(n_fft, dtype=torch.float32)
        self.register_buffer("window", 0.5 - 0.5 * torch.cos(2 * math.pi * n / n_fft))

    def forward(self, pcm: torch.Tensor, lengths: torch.Tensor):
        """See the class docstring."""
        wave = pcm.float() / 32768.0
        b, n = wave.shape
        pad, t = self.n_fft // 2, 1 + n // self.hop
        pos = torch.arange(n + 2 * pad, device=wave.device)[None, :] - pad
        last = (lengths.long() - 1).clamp(min=0)[:, None]
        src = pos.abs()
        src = torch.where(src > last, 2 * last - src, src)
        src = torch.minimum(src.clamp(min=0), last)  # reflect about each wave's own end
        padded = torch.gather(wave, 1, src)  # [B, N + 2 pad]
        frames = padded.unfold(1, self.n_fft, self.hop)[:, :t] * self.window  # [B, T, n_fft]
        spec = torch.fft.rfft(frames, dim=-1)
        power = spec.real**2 + spec.imag**2
        feats = torch.log(power @ self.fb + self.eps)  # [B, T, n_mels]
        n_frames = torch.where(lengths > 0, 1 + lengths.long() // self.hop, 0)
        mask = torch.arange(t, device=wave.device)[None, :] < n_frames[:, None]
        m = mask[..., None].float()
        count = m.sum(1, keepdim=True).clamp(min=1.0)
        mu = (feats * m).sum(1, keepdim=True) / count
        var = (((feats - mu) * m) ** 2).sum(1, keepdim=True) / count
        return ((feats - mu) / torch.sqrt(var + 1e-5)) * m, mask


class _Block(nn.Module):
    def __init__(self, cin: int, cout: int, stride: int):
        super().__init__()
        self.c1 = nn.Conv2d(cin, cout, 3, stride, 1, bias=False)
        self.n1 = nn.BatchNorm2d(cout, momentum=0.1)
        self.c2 = nn.Conv2d(cout, cout, 3, 1, 1, bias=False)
        self.n2 = nn.BatchNorm2d(cout, momentum=0.1)
        self.proj = None
        if cin != cout or stride != 1:
            self.proj = nn.Sequential(nn.Conv2d(cin, cout, 1, stride, bias=False),
                                      nn.BatchNorm2d(cout, momentum=0.1))

    def forward(self, x):
        y = self.n2(self.c2(torch.relu(self.n1(self.c1(x)))))
        return torch.relu((x if self.proj is None else self.proj(x)) + y)


class QuickstartTorch(nn.Module):
    """The quickstart's fused model: host batch tensors -> logits [B, C].

    Args:
      fb: the log-mel filterbank (see :class:`LogMelTorch`).
      vocab_size, num_classes: token ids and classes.
      frame_size: H = W of the frames (square RGB).
      n_fft, hop: of the log-mel front end.
    """

    def __init__(self, fb: np.ndarray, vocab_size: int, num_classes: int, frame_size: int = 32,
                 n_fft: int = 400, hop: int = 160, width: int = 16, video_widths=(16, 32),
                 frame_dim: int = 128, video_hidden: int = 64, text_embed: int = 32,
                 text_hidden: int = 32, head_hidden: int = 64, dropout: float = 0.3,
                 text_dropout: float = 0.1):
        super().__init__()
        self.logmel = LogMelTorch(fb, n_fft, hop)
        self.stem = nn.Sequential(nn.Conv2d(1, width, 7, 2, 3, bias=False),
                                  nn.BatchNorm2d(width, momentum=0.1), nn.ReLU(),
                                  nn.MaxPool2d(3, 2, 1))
        self.stages = nn.Sequential(_Block(width, width, 1), _Block(width, 2 * width, 2))
        convs, cin, size = [], 3, frame_size
        for w in video_widths:
            convs += [nn.Conv2d(cin, w, 3, 2, 1), nn.GroupNorm(w // min(8, w), w), nn.ReLU()]
            cin, size = w, (size + 1) // 2
        self.frame_cnn = nn.Sequential(*convs, nn.Flatten(), nn.Linear(cin * size * size,
                                                                      frame_dim), nn.ReLU())
        self.frame_lstm = nn.LSTM(frame_dim, video_hidden, batch_first=True)
        self.embed = nn.Embedding(vocab_size, text_embed)
        nn.init.normal_(self.embed.weight, std=text_embed**-0.5)  # Flax's nn.Embed default
        self.text_drop = nn.Dropout(text_dropout)
        self.text_lstm = nn.LSTM(text_embed, text_hidden, batch_first=True, bidirectional=True)
        fused = 2 * width + (video_hidden + frame_dim) + 4 * text_hidden
        self.head = nn.Sequential(nn.Linear(fused, head_hidden), nn.ReLU(), nn.Dropout(dropout),
                                  nn.Linear(head_hidden, num_classes))

    def audio(self, pcm, lengths):
        """[B, N] int16 PCM -> [B, 2 * width]: log-mel, ResNet, mean over mel bins, masked mean
        over the time steps any of whose frames is valid."""
        x, mask = self.logmel(pcm, lengths)  # [B, T, F], [B, T]
        y = self.stages(self.stem(x[:, None])).mean(3)  # [B, C, T']
        b, t = mask.shape
        new = y.shape[2]
        stride = -(-t // new)
        m = torch.nn.functional.pad(mask, (0, new * stride - t)).reshape(b, new, stride).any(-1)
        return masked_mean(y.transpose(1, 2), m)

    def video(self, frames_u8, lengths):
        """[B, Tv, H, W, 3] uint8 -> [B, hidden + frame_dim]: last LSTM state + mean frame."""
        b, t = frames_u8.shape[:2]
        mask = torch.arange(t, device=lengths.device)[None, :] < lengths[:, None]
        x = frames_u8.float().div(255.0).permute(0, 1, 4, 2, 3).reshape((b * t, 3)
                                                                        + frames_u8.shape[2:4])
        seq = self.frame_cnn(x).reshape(b, t, -1) * mask[..., None]  # [B, Tv, D]
        h = run_lstm(self.frame_lstm, seq, mask.sum(1))  # [B, Tv, H]
        idx = (mask.sum(1) - 1).clamp(min=0)
        last = h[torch.arange(b, device=h.device), idx]
        return torch.cat([last, masked_mean(seq, mask)], -1)

    def text(self, tokens):
        """[B, L] int -> [B, 4 * hidden]: BiLSTM mean and max over the real tokens."""
        mask = tokens > 0
        h = run_lstm(self.text_lstm, self.text_drop(self.embed(tokens)), mask.sum(1))
        return torch.cat([masked_mean(h, mask), masked_max(h, mask)], -1)

    def forward(self, batch: dict) -> torch.Tensor:
        """Host batch tensors (``audio_pcm``, ``audio_len``, ``frames_u8``, ``frames_len``,
        ``tokens``) -> logits [B, C]; features concatenated in sorted modality order."""
        z = torch.cat([self.audio(batch["audio_pcm"], batch["audio_len"]),
                       self.video(batch["frames_u8"], batch["frames_len"]),
                       self.text(batch["tokens"])], -1)
        return self.head(z)

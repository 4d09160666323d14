"""The seed's model as written (fixed only so it runs), copied from ../shared/anchors/seed_baseline.py
so that benchmarks/bench_model.py can measure it beside mstoolkit's model in the same run.

nn.Embedding(256) content + CNN mel style (128) concatenated, nn.Transformer(d_model=384, nhead=8,
6 encoder + 6 decoder layers; its defaults: MLP 2048, dropout 0.1, post-LN), no positional encoding.
Generation as in the anchor: no KV cache, the decoder re-reads the whole prefix at every step.
"""
import torch
import torch.nn as nn
import torch.nn.functional as F


class CNNMelEncoder(nn.Module):
    def __init__(self, n_mels=128, output_dim=128):
        super().__init__()
        self.net = nn.Sequential(
            nn.Conv2d(1, 32, 3, 2, 1), nn.ReLU(), nn.Conv2d(32, 64, 3, 2, 1), nn.ReLU(),
            nn.Conv2d(64, 128, 3, 2, 1), nn.ReLU(), nn.AdaptiveAvgPool2d(1))
        self.proj = nn.Linear(128, output_dim)

    def forward(self, mel):  # (B, n_mels, frames)
        return self.proj(self.net(mel.unsqueeze(1)).flatten(1))


class MusicStyleTransformer(nn.Module):
    def __init__(self, n_token, style_dim=128):
        super().__init__()
        self.content_embed = nn.Embedding(n_token, 256)
        self.style_encoder = CNNMelEncoder(output_dim=style_dim)
        self.tgt_embed = nn.Embedding(n_token, 256 + style_dim)
        self.transformer = nn.Transformer(d_model=256 + style_dim, nhead=8, num_encoder_layers=6,
                                          num_decoder_layers=6, batch_first=True)
        self.head = nn.Linear(256 + style_dim, n_token)

    def encode(self, src, mel):
        content = self.content_embed(src)
        style = self.style_encoder(mel).unsqueeze(1)
        combined = torch.cat([content, style.expand(-1, content.size(1), -1)], -1)
        return self.transformer.encoder(combined)

    def decode(self, memory, tgt):
        mask = nn.Transformer.generate_square_subsequent_mask(tgt.size(1), device=tgt.device)
        return self.head(self.transformer.decoder(self.tgt_embed(tgt), memory, tgt_mask=mask, tgt_is_causal=True))

    def forward(self, src, mel, tgt):
        return self.decode(self.encode(src, mel), tgt)


@torch.no_grad()
def seed_generate(model, src, mel, n_new):
    """The anchor's decoding loop: sample ``n_new`` tokens, re-decoding the whole prefix each step."""
    memory = model.encode(src, mel)
    out = torch.zeros(src.size(0), 1, dtype=torch.long, device=src.device)
    for _ in range(n_new):
        logits = model.decode(memory, out)[:, -1].float()
        nxt = torch.multinomial(F.softmax(logits / 1.0, -1), 1)
        out = torch.cat([out, nxt], 1)
    return out

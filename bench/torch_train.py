# PyTorch peer of bench/train.ts: the same Llama (random weights) trained with LoRA on every block linear, or fully,
# timed per step (forward, backward, clip, AdamW). Run by the bench with Debian's python3-torch (/usr/bin/python3):
#   /usr/bin/python3 bench/torch_train.py '{"mode": "lora", "vocab": 49152, ...}'
# Prints one JSON object: {"step_s": [...], "loss": [...], "peak_rss_mb": ..., "torch": "1.13.1", "threads": 2,
# "blas": the libblas.so.3 it mapped}. The bench picks the OpenBLAS build (LD_LIBRARY_PATH=/usr/lib/x86_64-linux-gnu/
# openblas-pthread or openblas-openmp) and OMP_WAIT_POLICY of each run, and checks "blas" against the build it asked for.
#
# Letters: B batch, T time, C hidden, H query heads, G key/value heads, D head dim, I MLP width, V vocabulary.
import json
import math
import resource
import sys
import time

import torch
import torch.nn as nn
import torch.nn.functional as F


class RMSNorm(nn.Module):
    def __init__(self, c, eps):
        super().__init__()
        self.weight = nn.Parameter(torch.ones(c))
        self.eps = eps

    def forward(self, x):  # x [B, T, C]
        return x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + self.eps) * self.weight


class LoraLinear(nn.Module):
    """y = x·Wᵀ + scaling · (x·Aᵀ)·Bᵀ with W frozen; A [r, in] Kaiming-uniform, B [out, r] zeros (PEFT's init)."""

    def __init__(self, base, r, alpha):
        super().__init__()
        self.base = base
        self.base.weight.requires_grad_(False)
        self.lora_A = nn.Linear(base.in_features, r, bias=False)
        self.lora_B = nn.Linear(r, base.out_features, bias=False)
        nn.init.kaiming_uniform_(self.lora_A.weight, a=math.sqrt(5))
        nn.init.zeros_(self.lora_B.weight)
        self.scaling = alpha / r

    def forward(self, x):
        return self.base(x) + self.lora_B(self.lora_A(x)) * self.scaling


def rotate_half(x):  # Hugging Face's 'halves' RoPE pairing
    h = x.shape[-1] // 2
    return torch.cat((-x[..., h:], x[..., :h]), dim=-1)


class Block(nn.Module):
    def __init__(self, c):
        super().__init__()
        C, H, G, D, I = c['hidden'], c['heads'], c['kv_heads'], c['head_dim'], c['inter']
        self.H, self.G, self.D = H, G, D
        self.attn_norm = RMSNorm(C, c['eps'])
        self.q = nn.Linear(C, H * D, bias=False)
        self.k = nn.Linear(C, G * D, bias=False)
        self.v = nn.Linear(C, G * D, bias=False)
        self.o = nn.Linear(H * D, C, bias=False)
        self.mlp_norm = RMSNorm(C, c['eps'])
        self.gate = nn.Linear(C, I, bias=False)
        self.up = nn.Linear(C, I, bias=False)
        self.down = nn.Linear(I, C, bias=False)

    def forward(self, x, cos, sin, mask):
        B, T, _ = x.shape
        H, G, D = self.H, self.G, self.D
        h = self.attn_norm(x)
        q = self.q(h).view(B, T, H, D).transpose(1, 2)  # [B, H, T, D]
        k = self.k(h).view(B, T, G, D).transpose(1, 2)  # [B, G, T, D]
        v = self.v(h).view(B, T, G, D).transpose(1, 2)
        q = q * cos + rotate_half(q) * sin
        k = k * cos + rotate_half(k) * sin
        k = k.repeat_interleave(H // G, dim=1)  # grouped-query heads: each kv head serves H/G query heads
        v = v.repeat_interleave(H // G, dim=1)
        s = (q @ k.transpose(-2, -1)) / math.sqrt(D) + mask  # [B, H, T, T]
        a = (F.softmax(s, dim=-1) @ v).transpose(1, 2).reshape(B, T, H * D)
        x = x + self.o(a)
        m = self.mlp_norm(x)
        return x + self.down(F.silu(self.gate(m)) * self.up(m))


class Llama(nn.Module):
    def __init__(self, c):
        super().__init__()
        self.embed = nn.Embedding(c['vocab'], c['hidden'])
        self.blocks = nn.ModuleList([Block(c) for _ in range(c['layers'])])
        self.norm = RMSNorm(c['hidden'], c['eps'])
        D = c['head_dim']
        self.inv_freq = 1.0 / (c['rope_theta'] ** (torch.arange(0, D, 2, dtype=torch.float32) / D))

    def forward(self, ids):  # ids [B, T] → logits [B, T, V] (LM head tied to the embedding)
        T = ids.shape[1]
        ang = torch.outer(torch.arange(T, dtype=torch.float32), self.inv_freq)  # [T, D/2]
        emb = torch.cat((ang, ang), dim=-1)
        cos, sin = emb.cos(), emb.sin()
        mask = torch.full((T, T), float('-inf')).triu(1)
        x = self.embed(ids)
        for b in self.blocks:
            x = b(x, cos, sin, mask)
        return F.linear(self.norm(x), self.embed.weight)


def blas_library():
    """The BLAS this torch calls (Debian's build links libblas.so.3, whichever package provides it: the reference
    libblas3 or OpenBLAS): the resolved path of the mapped library, after a product has run."""
    import os
    torch.ones(64, 64) @ torch.ones(64, 64)
    for line in open('/proc/self/maps'):
        path = line.split()[-1]
        if 'blas' in os.path.basename(path).lower():
            return os.path.realpath(path)
    return 'unknown'


def main():
    c = json.loads(sys.argv[1])
    torch.set_num_threads(c['threads'])
    torch.manual_seed(c['seed'])
    model = Llama(c)
    with torch.no_grad():
        for name, p in model.named_parameters():
            if p.ndim == 2:
                p.normal_(0.0, 0.02)  # as the TypeScript side's initWeights (transformers' initializer_range)
    if c['mode'] == 'lora':
        for p in model.parameters():
            p.requires_grad_(False)
        for b in model.blocks:
            for name in ('q', 'k', 'v', 'o', 'gate', 'up', 'down'):
                setattr(b, name, LoraLinear(getattr(b, name), c['rank'], c['alpha']))
    params = [p for p in model.parameters() if p.requires_grad]
    opt = torch.optim.AdamW(params, lr=1e-4, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.0)
    B, T, V = c['batch'], c['seq'], c['vocab']
    g = torch.Generator().manual_seed(c['seed'] + 1)
    step_s, losses = [], []
    for step in range(c['warmup'] + c['steps']):
        ids = torch.randint(0, V, (B, T), generator=g)
        labels = torch.randint(0, V, (B * T,), generator=g)
        t0 = time.perf_counter()
        loss = F.cross_entropy(model(ids).view(B * T, V), labels)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, 1.0)
        opt.step()
        opt.zero_grad(set_to_none=True)
        dt = time.perf_counter() - t0
        if step >= c['warmup']:
            step_s.append(dt)
        losses.append(loss.item())
    rss_kb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # KB on Linux
    print(json.dumps({'step_s': step_s, 'loss': losses, 'peak_rss_mb': rss_kb / 1024, 'torch': torch.__version__,
                      'threads': torch.get_num_threads(), 'blas': blas_library(), 'trainable': sum(p.numel() for p in params)}))


if __name__ == '__main__':
    main()

// Outside reference for llama2.c checkpoints (issue 18 item 6), on a clean clone: the test writes a small legacy
// (version 0) checkpoint itself, in the public layout of karpathy/llama2.c (run.c read_checkpoint: 7 int32 header
// fields, then f32 arrays in file order), loads it with loadModel, and compares every position's logits with
// run.c's forward pass written out plainly here in float64 (rmsnorm, interleaved RoPE with
// freq = 10000^(-(i mod head_size)/head_size), GQA attention, SwiGLU, classifier). Both a shared classifier
// (positive vocab_size) and a separate wcls (negative vocab_size) are covered, with n_kv_heads < n_heads.
// Tolerance 1e-4 on logits (max |logit| ~8; measured 5.1e-6, float32 rounding of our engine against float64).
// Checked: loading the checkpoint with ropeMode 'halves' (differences 7 to 13), or with w1 and w3 swapped (9 to 12),
// fails here.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { loadModel } from '../src/models/load.js';
import { noGrad, tidy } from '../src/engine/index.js';
import { Rng } from '../src/engine/rng.js';

const LOGIT_TOL = 1e-4;

interface Ck {
  dim: number; hidden: number; layers: number; heads: number; kvHeads: number; vocab: number; seqLen: number; shared: boolean;
  emb: Float64Array; rmsAtt: Float64Array[]; wq: Float64Array[]; wk: Float64Array[]; wv: Float64Array[]; wo: Float64Array[];
  rmsFfn: Float64Array[]; w1: Float64Array[]; w2: Float64Array[]; w3: Float64Array[]; rmsFinal: Float64Array; wcls: Float64Array;
}

/** Random weights, each rounded to float32 (what the file holds). */
function makeCk(shared: boolean, seed: number): Ck {
  const rng = new Rng(seed);
  const rand = (n: number, std: number, mean = 0): Float64Array => Float64Array.from({ length: n }, () => Math.fround(mean + std * rng.normal()));
  const [dim, hidden, layers, heads, kvHeads, vocab, seqLen] = [24, 40, 2, 4, 2, 50, 32];
  const hs = dim / heads;
  const kvDim = kvHeads * hs;
  const per = <T>(f: () => T): T[] => Array.from({ length: layers }, f);
  const emb = rand(vocab * dim, 0.5);
  return {
    dim, hidden, layers, heads, kvHeads, vocab, seqLen, shared, emb,
    rmsAtt: per(() => rand(dim, 0.1, 1)), wq: per(() => rand(dim * dim, 0.3)), wk: per(() => rand(kvDim * dim, 0.3)),
    wv: per(() => rand(kvDim * dim, 0.3)), wo: per(() => rand(dim * dim, 0.3)), rmsFfn: per(() => rand(dim, 0.1, 1)),
    w1: per(() => rand(hidden * dim, 0.3)), w2: per(() => rand(dim * hidden, 0.3)), w3: per(() => rand(hidden * dim, 0.3)),
    rmsFinal: rand(dim, 0.1, 1), wcls: shared ? emb : rand(vocab * dim, 0.5),
  };
}

/** The checkpoint bytes, in run.c's order (freq_cis_real/imag included as llama2.c's export writes them). */
function ckBytes(c: Ck): Buffer {
  const hs = c.dim / c.heads;
  const arrays: Float64Array[] = [
    c.emb, ...c.rmsAtt, ...c.wq, ...c.wk, ...c.wv, ...c.wo, ...c.rmsFfn, ...c.w1, ...c.w2, ...c.w3, c.rmsFinal,
    new Float64Array(c.seqLen * (hs / 2)).fill(1), new Float64Array(c.seqLen * (hs / 2)),
    ...(c.shared ? [] : [c.wcls]),
  ];
  const header = Int32Array.of(c.dim, c.hidden, c.layers, c.heads, c.kvHeads, c.shared ? c.vocab : -c.vocab, c.seqLen);
  const body = Float32Array.from(arrays.flatMap((a) => [...a]));
  return Buffer.concat([Buffer.from(header.buffer), Buffer.from(body.buffer)]);
}

/** y[out] = W[out, in] · x */
function matmul(w: Float64Array, x: Float64Array, out: number): Float64Array {
  const n = x.length;
  return Float64Array.from({ length: out }, (_, i) => {
    let s = 0;
    for (let j = 0; j < n; j++) s += w[i * n + j] * x[j];
    return s;
  });
}

function rmsnorm(x: Float64Array, w: Float64Array): Float64Array {
  let ss = 0;
  for (const v of x) ss += v * v;
  const k = 1 / Math.sqrt(ss / x.length + 1e-5);
  return x.map((v, i) => w[i] * (k * v));
}

/** run.c's forward() for each position of `tokens` in turn: logits [T][vocab], float64 throughout. */
function referenceLogits(c: Ck, tokens: number[]): Float64Array[] {
  const hs = c.dim / c.heads;
  const kvDim = c.kvHeads * hs;
  const kvMul = c.heads / c.kvHeads;
  const keys: Float64Array[][] = Array.from({ length: c.layers }, () => []);
  const vals: Float64Array[][] = Array.from({ length: c.layers }, () => []);
  return tokens.map((token, pos) => {
    let x = c.emb.slice(token * c.dim, (token + 1) * c.dim);
    for (let l = 0; l < c.layers; l++) {
      const xb = rmsnorm(x, c.rmsAtt[l]);
      const q = matmul(c.wq[l], xb, c.dim);
      const k = matmul(c.wk[l], xb, kvDim);
      const v = matmul(c.wv[l], xb, kvDim);
      for (let i = 0; i < c.dim; i += 2) {
        const freq = 1 / Math.pow(10000, (i % hs) / hs);
        const [cos, sin] = [Math.cos(pos * freq), Math.sin(pos * freq)];
        for (const vec of i < kvDim ? [q, k] : [q]) {
          const [v0, v1] = [vec[i], vec[i + 1]];
          vec[i] = v0 * cos - v1 * sin;
          vec[i + 1] = v0 * sin + v1 * cos;
        }
      }
      keys[l].push(k);
      vals[l].push(v);
      const att = new Float64Array(c.dim);
      for (let h = 0; h < c.heads; h++) {
        const off = Math.floor(h / kvMul) * hs;
        const scores = keys[l].map((kt) => {
          let s = 0;
          for (let i = 0; i < hs; i++) s += q[h * hs + i] * kt[off + i];
          return s / Math.sqrt(hs);
        });
        const max = Math.max(...scores);
        const e = scores.map((s) => Math.exp(s - max));
        const sum = e.reduce((a, b) => a + b, 0);
        vals[l].forEach((vt, t) => {
          for (let i = 0; i < hs; i++) att[h * hs + i] += (e[t] / sum) * vt[off + i];
        });
      }
      const o = matmul(c.wo[l], att, c.dim);
      x = x.map((xi, i) => xi + o[i]);
      const xb2 = rmsnorm(x, c.rmsFfn[l]);
      const h1 = matmul(c.w1[l], xb2, c.hidden);
      const h3 = matmul(c.w3[l], xb2, c.hidden);
      const hb = h1.map((a, i) => (a / (1 + Math.exp(-a))) * h3[i]);
      const down = matmul(c.w2[l], hb, c.dim);
      x = x.map((xi, i) => xi + down[i]);
    }
    return matmul(c.wcls, rmsnorm(x, c.rmsFinal), c.vocab);
  });
}

for (const shared of [false, true]) {
  test(`a llama2.c checkpoint (${shared ? 'shared classifier' : 'separate wcls'}) loads with run.c's logits`, () => {
    const dir = mkdtempSync(join(tmpdir(), 'nomoat-llama2c-'));
    try {
      const ck = makeCk(shared, shared ? 11 : 12);
      const path = join(dir, 'model.bin');
      writeFileSync(path, ckBytes(ck));
      const loaded = loadModel(path);
      assert.equal(loaded.format, 'llama2c');
      assert.equal(loaded.tokenizer, null);
      assert.equal(loaded.model.config.tieWordEmbeddings, shared);
      const tokens = [1, 7, 23, 42, 7, 0, 49, 13, 30, 5, 18, 2];
      const want = referenceLogits(ck, tokens);
      const got = noGrad(() => tidy(() => loaded.model.forward(Int32Array.from(tokens), 1, tokens.length).toArray()));
      loaded.model.dispose();
      assert.equal(got.length, tokens.length * ck.vocab);
      let worst = 0;
      let spread = 0;
      want.forEach((row, t) => row.forEach((w, v) => {
        worst = Math.max(worst, Math.abs(got[t * ck.vocab + v] - w));
        spread = Math.max(spread, Math.abs(w));
      }));
      console.log(`# llama2.c ${shared ? 'shared' : 'wcls'}: ${tokens.length} positions, max |logit| ${spread.toFixed(2)}, max logit difference ${worst.toExponential(2)}`);
      assert.ok(spread > 1, `the reference logits are too flat to test anything (max |logit| ${spread})`);
      assert.ok(worst <= LOGIT_TOL, `logits differ from run.c's arithmetic by ${worst} (> ${LOGIT_TOL})`);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
}

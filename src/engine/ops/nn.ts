// Fused model ops: embedding, RMSNorm, RoPE, attention, SwiGLU, softmax, losses, dropout.
// Each is one backend kernel pair; the rule here only wires saved tensors to the backward kernel.

import type { Buf, RopeMode } from '../backend.js';
import { record } from '../autograd.js';
import { Tensor } from '../tensor.js';
import { contiguous } from './movement.js';

function checkIds(ids: Int32Array, V: number, what: string): void {
  for (let i = 0; i < ids.length; i++) {
    const id = ids[i];
    if (id < 0 || id >= V) throw new Error(`${what}: token id ${id} at position ${i} is outside the vocabulary [0, ${V})`);
  }
}

/** table[V, C] gathered at ids → [...idsShape, C]. */
export function embedding(table: Tensor, ids: Int32Array, idsShape: readonly number[] = [ids.length]): Tensor {
  const [V, C] = table.shape as [number, number];
  checkIds(ids, V, 'embedding');
  const t = contiguous(table);
  const out = Tensor.empty([...idsShape, C], table.backend);
  table.backend.embeddingForward(t.data, ids, out.data, ids.length, C);
  return record('embedding', out, [t], [], (_n, g) => {
    const gt = Tensor.zeros([V, C], g.backend);
    g.backend.embeddingBackward(g.data, ids, gt.data, ids.length, C);
    return [gt];
  });
}

/** x[..., C] / rms(x) * w[C]. */
export function rmsnorm(x: Tensor, w: Tensor, eps: number): Tensor {
  const xc = contiguous(x);
  const C = x.shape[x.ndim - 1];
  const N = x.size / C;
  const out = Tensor.empty(x.shape, x.backend);
  const rstd = Tensor.empty([N], x.backend);
  x.backend.rmsnormForward(xc.data, contiguous(w).data, out.data, rstd.data, N, C, eps);
  const res = record('rmsnorm', out, [xc, w], [xc, w, rstd], (node, g) => {
    const [xs, ws, rs] = [node.get(0), node.get(1), node.get(2)];
    const gx = Tensor.empty(x.shape, x.backend);
    const gw = Tensor.zeros([C], x.backend);
    x.backend.rmsnormBackward(g.data, xs.data, ws.data, rs.data, gx.data, gw.data, N, C);
    return [gx, gw];
  });
  rstd.dispose();
  return res;
}

/** Rotary position embedding on x[B, T, H, D] at absolute positions[T], per-pair inverse frequencies invFreq[D/2]. */
export function rope(x: Tensor, positions: Int32Array, invFreq: Buf, mode: RopeMode): Tensor {
  const [B, T, H, D] = x.shape as [number, number, number, number];
  if (x.ndim !== 4 || positions.length !== T || invFreq.length !== D / 2) {
    throw new Error(`rope: x must be [B, T, H, D] with positions[T] and invFreq[D/2]; got ${x.label()}, ${positions.length}, ${invFreq.length}`);
  }
  const xc = contiguous(x);
  const out = Tensor.empty(x.shape, x.backend);
  x.backend.rope(xc.data, out.data, B, T, H, D, positions, invFreq, mode, false);
  return record('rope', out, [xc], [], (_n, g) => {
    // The rotation is orthogonal: its transpose is the rotation by −angle.
    const gx = Tensor.empty(x.shape, x.backend);
    x.backend.rope(g.data, gx.data, B, T, H, D, positions, invFreq, mode, true);
    return [gx];
  });
}

export interface AttentionOptions {
  causal?: boolean; // default true
  scale?: number; // default 1/sqrt(D)
  qOffset?: number; // position of query 0 in the key timeline (KV cache); default Tk − Tq
}

/** Fused attention: q[B, Tq, H, D], k/v[B, Tk, G, D] (G divides H) → [B, Tq, H, D]. */
export function attention(q: Tensor, k: Tensor, v: Tensor, opts: AttentionOptions = {}): Tensor {
  const [B, Tq, H, D] = q.shape as [number, number, number, number];
  const [Bk, Tk, G, Dk] = k.shape as [number, number, number, number];
  if (q.ndim !== 4 || k.ndim !== 4 || Bk !== B || Dk !== D || H % G !== 0 || v.shape.some((d, i) => d !== k.shape[i])) {
    throw new Error(`attention: want q[B,Tq,H,D], k=v[B,Tk,G,D] with G | H; got ${q.label()}, ${k.label()}, ${v.label()}`);
  }
  const p = { B, Tq, Tk, H, G, D, scale: opts.scale ?? 1 / Math.sqrt(D), qOffset: opts.qOffset ?? Tk - Tq, causal: opts.causal ?? true };
  const [qc, kc, vc] = [contiguous(q), contiguous(k), contiguous(v)];
  const out = Tensor.empty(q.shape, q.backend);
  const lse = Tensor.empty([B, H, Tq], q.backend);
  q.backend.attentionForward(qc.data, kc.data, vc.data, out.data, lse.data, p);
  // The output is saved too (backward needs rowsum(dout·out)): save a separate handle, not `out` itself.
  const res = record('attention', out, [qc, kc, vc], [qc, kc, vc, out, lse], (node, g) => {
    const [qs, ks, vs, os, ls] = [0, 1, 2, 3, 4].map((i) => node.get(i)) as [Tensor, Tensor, Tensor, Tensor, Tensor];
    const [gq, gk, gv] = [Tensor.empty(q.shape, q.backend), Tensor.empty(k.shape, q.backend), Tensor.empty(k.shape, q.backend)];
    q.backend.attentionBackward(qs.data, ks.data, vs.data, os.data, ls.data, g.data, gq.data, gk.data, gv.data, p);
    return [gq, gk, gv];
  });
  lse.dispose();
  return res;
}

/** silu(gate) * up. */
export function swiglu(gate: Tensor, up: Tensor): Tensor {
  if (gate.shape.some((d, i) => d !== up.shape[i]) || gate.ndim !== up.ndim) throw new Error(`swiglu: shapes differ: ${gate.label()} vs ${up.label()}`);
  const [gc, uc] = [contiguous(gate), contiguous(up)];
  const out = Tensor.empty(gate.shape, gate.backend);
  gate.backend.swigluForward(gc.data, uc.data, out.data, out.size);
  return record('swiglu', out, [gc, uc], [gc, uc], (node, g, needs) => {
    const [gs, us] = [node.get(0), node.get(1)];
    const dg = Tensor.empty(gate.shape, gate.backend);
    const du = Tensor.empty(gate.shape, gate.backend);
    gate.backend.swigluBackward(gs.data, us.data, g.data, dg.data, du.data, out.size);
    return [needs[0] ? dg : (dg.dispose(), null), needs[1] ? du : (du.dispose(), null)];
  });
}

/** Softmax over the last dim. */
export function softmax(x: Tensor): Tensor {
  const xc = contiguous(x);
  const C = x.shape[x.ndim - 1];
  const N = x.size / C;
  const out = Tensor.empty(x.shape, x.backend);
  x.backend.softmaxForward(xc.data, out.data, N, C);
  return record('softmax', out, [xc], [out], (node, g) => {
    const gx = Tensor.empty(x.shape, x.backend);
    x.backend.softmaxBackward(node.get(0).data, g.data, gx.data, N, C);
    return [gx];
  });
}

/**
 * Mean cross-entropy of logits[N, V] against targets[N], rows with targets == ignoreIndex left out
 * (Hugging Face's −100 convention). A scalar; 0 when every row is ignored.
 */
export function crossEntropy(logits: Tensor, targets: Int32Array, ignoreIndex = -100): Tensor {
  const V = logits.shape[logits.ndim - 1];
  const N = logits.size / V;
  if (targets.length !== N) throw new Error(`crossEntropy: ${N} rows of logits but ${targets.length} targets`);
  for (let i = 0; i < N; i++) {
    const t = targets[i];
    if (t !== ignoreIndex && (t < 0 || t >= V)) throw new Error(`crossEntropy: target ${t} at row ${i} is outside [0, ${V})`);
  }
  const lc = contiguous(logits);
  const losses = Tensor.empty([N], logits.backend);
  const lse = Tensor.empty([N], logits.backend);
  const count = logits.backend.crossEntropyForward(lc.data, targets, losses.data, lse.data, N, V, ignoreIndex);
  let total = 0;
  for (const l of losses.data) total += l;
  losses.dispose();
  const out = Tensor.from([count > 0 ? total / count : 0], [], logits.backend);
  const res = record('crossEntropy', out, [lc], [lc, lse], (node, g) => {
    const dloss = Tensor.full([N], count > 0 ? g.data[0] / count : 0, logits.backend);
    const gl = Tensor.empty(logits.shape, logits.backend);
    logits.backend.crossEntropyBackward(node.get(0).data, targets, node.get(1).data, dloss.data, gl.data, N, V, ignoreIndex);
    dloss.dispose();
    return [gl];
  });
  lse.dispose();
  return res;
}

/**
 * Distillation loss: mean over rows of T²·KL(softmax(teacher/T) ‖ softmax(student/T)). Teacher logits are
 * constants. student, teacher: [..., V].
 */
export function klDiv(student: Tensor, teacher: Tensor, temperature = 1): Tensor {
  const V = student.shape[student.ndim - 1];
  const N = student.size / V;
  if (teacher.size !== student.size) throw new Error(`klDiv: ${student.label()} and ${teacher.label()} differ in size`);
  const [sc, tc] = [contiguous(student), contiguous(teacher)];
  const losses = Tensor.empty([N], student.backend);
  student.backend.klDivForward(sc.data, tc.data, losses.data, N, V, temperature);
  let total = 0;
  for (const l of losses.data) total += l;
  losses.dispose();
  const out = Tensor.from([total / N], [], student.backend);
  return record('klDiv', out, [sc], [sc, tc], (node, g) => {
    const dloss = Tensor.full([N], g.data[0] / N, student.backend);
    const gs = Tensor.empty(student.shape, student.backend);
    student.backend.klDivBackward(node.get(0).data, node.get(1).data, dloss.data, gs.data, N, V, temperature);
    dloss.dispose();
    return [gs];
  });
}

/** Inverted dropout with a counter-based mask: the same seed gives the same mask on every backend. */
export function dropout(x: Tensor, p: number, seed: number): Tensor {
  if (p <= 0) return x;
  if (p >= 1) throw new Error(`dropout probability must be < 1, got ${p}`);
  const xc = contiguous(x);
  const out = Tensor.empty(x.shape, x.backend);
  const mask = Tensor.empty(x.shape, x.backend);
  x.backend.dropoutForward(xc.data, out.data, mask.data, x.size, p, seed);
  const res = record('dropout', out, [xc], [mask], (node, g) => {
    const gx = Tensor.empty(x.shape, x.backend);
    const m = node.get(0);
    x.backend.binary('mul', g.data, [1], m.data, [1], gx.data, [x.size]);
    return [gx];
  });
  mask.dispose();
  return res;
}

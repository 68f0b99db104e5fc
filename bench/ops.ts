// Bandwidth benchmark of the fused row kernels: RMSNorm, attention and softmax-cross-entropy, forward+backward,
// in GB/s counting every byte read and written once, against the addon's memory-copy bandwidth on the same
// threads (memcpy: bytes read + bytes written).
import { loadNativeAddon, type NativeAddon } from '../src/engine/native/addon.js';
import { bestTime, emit, threadCounts } from './common.js';

interface OpCase {
  metric: string;
  bytes: number;
  /** allocates, returns the timed call and a cleanup */
  setup: (a: NativeAddon) => { run: () => void; done: () => void };
}

function filled(a: NativeAddon, n: number, f: (i: number) => number): Float32Array {
  const x = a.alloc(n);
  for (let i = 0; i < n; i++) x[i] = f(i);
  return x;
}

function rmsnormCase(N: number, C: number): OpCase {
  // fwd reads x, w, writes out, rstd; bwd reads dout, x, w, rstd, dw and writes dx, dw
  const bytes = 4 * (2 * N * C + C + N) + 4 * (3 * N * C + 3 * C + N);
  return {
    metric: `rmsnorm_fwd_bwd_N${N}_C${C}`, bytes,
    setup: (a) => {
      const x = filled(a, N * C, (i) => Math.sin(i)), w = filled(a, C, (i) => 1 + 0.01 * i), out = a.alloc(N * C);
      const rstd = a.alloc(N), dout = filled(a, N * C, (i) => Math.cos(i)), dx = a.alloc(N * C), dw = a.alloc(C);
      return {
        run: () => {
          a.rmsnormForward(x, w, out, rstd, N, C, 1e-5);
          a.rmsnormBackward(dout, x, w, rstd, dx, dw, N, C);
        },
        done: () => [x, w, out, rstd, dout, dx, dw].forEach((b) => a.free(b)),
      };
    },
  };
}

function crossEntropyCase(N: number, V: number): OpCase {
  // fwd reads logits, targets, writes losses, lse; bwd reads logits, targets, lse, dloss, writes dlogits
  const bytes = 4 * (N * V + 3 * N) + 4 * (2 * N * V + 3 * N);
  return {
    metric: `softmax_ce_fwd_bwd_N${N}_V${V}`, bytes,
    setup: (a) => {
      const logits = filled(a, N * V, (i) => Math.sin(i) * 4), targets = Int32Array.from({ length: N }, (_, i) => (i * 7919) % V);
      const losses = a.alloc(N), lse = a.alloc(N), dloss = filled(a, N, () => 1 / N), dlogits = a.alloc(N * V);
      return {
        run: () => {
          a.crossEntropyForward(logits, targets, losses, lse, N, V, -100);
          a.crossEntropyBackward(logits, targets, lse, dloss, dlogits, N, V, -100);
        },
        done: () => [logits, losses, lse, dloss, dlogits].forEach((b) => a.free(b)),
      };
    },
  };
}

function attentionCase(T: number, H: number, G: number, D: number): OpCase {
  const q = T * H * D, kv = T * G * D;
  // fwd reads q, k, v, writes out, lse; bwd reads q, k, v, out, lse, dout, writes dq, dk, dv
  const bytes = 4 * (2 * q + 2 * kv + H * T) + 4 * (4 * q + 4 * kv + H * T);
  return {
    metric: `attention_fwd_bwd_B1_T${T}_H${H}_G${G}_D${D}_causal`, bytes,
    setup: (a) => {
      const bq = filled(a, q, (i) => Math.sin(i)), bk = filled(a, kv, (i) => Math.cos(i)), bv = filled(a, kv, (i) => Math.sin(3 * i));
      const out = a.alloc(q), lse = a.alloc(H * T), dout = filled(a, q, (i) => Math.cos(5 * i));
      const dq = a.alloc(q), dk = a.alloc(kv), dv = a.alloc(kv);
      const s = 1 / Math.sqrt(D);
      return {
        run: () => {
          a.attentionForward(bq, bk, bv, out, lse, 1, T, T, H, G, D, s, 0, true);
          a.attentionBackward(bq, bk, bv, out, lse, dout, dq, dk, dv, 1, T, T, H, G, D, s, 0, true);
        },
        done: () => [bq, bk, bv, out, lse, dout, dq, dk, dv].forEach((b) => a.free(b)),
      };
    },
  };
}

function decodeAttentionCase(Tk: number, H: number, G: number, D: number): OpCase {
  // one new query against a KV cache: reads q, k, v, writes out, lse
  const bytes = 4 * (2 * H * D + 2 * Tk * G * D + H);
  return {
    metric: `attention_decode_fwd_Tk${Tk}_H${H}_G${G}_D${D}`, bytes,
    setup: (a) => {
      const q = filled(a, H * D, (i) => Math.sin(i)), k = filled(a, Tk * G * D, (i) => Math.cos(i));
      const v = filled(a, Tk * G * D, (i) => Math.sin(2 * i)), out = a.alloc(H * D), lse = a.alloc(H);
      return {
        run: () => a.attentionForward(q, k, v, out, lse, 1, 1, Tk, H, G, D, 1 / Math.sqrt(D), Tk - 1, true),
        done: () => [q, k, v, out, lse].forEach((b) => a.free(b)),
      };
    },
  };
}

export function runOpsBench(): void {
  const addon = loadNativeAddon();
  const cases = [rmsnormCase(4096, 2048), crossEntropyCase(512, 32000), attentionCase(256, 8, 2, 64), decodeAttentionCase(4096, 32, 8, 64)];
  const threadsBefore = addon.getThreads();
  for (const threads of threadCounts()) {
    addon.setThreads(threads);
    const copy = addon.copyBandwidth(threads, 256 << 20);
    for (const c of cases) {
      const { run, done } = c.setup(addon);
      const t = bestTime(run, 5, 2);
      done();
      emit({
        bench: 'ops', metric: `${c.metric}_t${threads}`, unit: 'GB/s', ours: c.bytes / t / 1e9, peer: copy,
        peer_name: 'memcpy bandwidth', higher_is_better: true, note: `simd=${addon.simdLevel()}`,
      });
    }
  }
  addon.setThreads(threadsBefore);
}

// HF ↔ GGUF names, the Q/K permutation (against a literal transcription of convert_hf_to_gguf's numpy permute),
// and config ↔ metadata round trips.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  ggufMetadataToHfConfig,
  ggufToHfName,
  hfConfigToGgufMetadata,
  hfToGgufName,
  qkHalvesToInterleaved,
  qkInterleavedToHalves,
  type HfLlamaConfig,
} from './names.js';

void test('tensor names map both ways for every Llama/Qwen2 tensor', () => {
  const pairs: [string, string][] = [
    ['model.embed_tokens.weight', 'token_embd.weight'],
    ['model.norm.weight', 'output_norm.weight'],
    ['lm_head.weight', 'output.weight'],
    ['model.layers.0.input_layernorm.weight', 'blk.0.attn_norm.weight'],
    ['model.layers.11.self_attn.q_proj.weight', 'blk.11.attn_q.weight'],
    ['model.layers.3.self_attn.k_proj.bias', 'blk.3.attn_k.bias'],
    ['model.layers.3.self_attn.v_proj.weight', 'blk.3.attn_v.weight'],
    ['model.layers.3.self_attn.o_proj.weight', 'blk.3.attn_output.weight'],
    ['model.layers.3.post_attention_layernorm.weight', 'blk.3.ffn_norm.weight'],
    ['model.layers.3.mlp.gate_proj.weight', 'blk.3.ffn_gate.weight'],
    ['model.layers.3.mlp.up_proj.weight', 'blk.3.ffn_up.weight'],
    ['model.layers.3.mlp.down_proj.weight', 'blk.3.ffn_down.weight'],
  ];
  for (const [hf, gg] of pairs) {
    assert.equal(hfToGgufName(hf), gg);
    assert.equal(ggufToHfName(gg), hf);
  }
  assert.equal(hfToGgufName('model.layers.0.self_attn.rotary_emb.inv_freq'), null);
  assert.equal(ggufToHfName('rope_freqs.weight'), null);
});

// numpy: w.reshape(n_head, 2, rows // n_head // 2, cols).swapaxes(1, 2).reshape(rows, cols), written out literally
function numpyPermute(w: number[][], nHead: number): number[][] {
  const rows = w.length;
  const half = rows / nHead / 2;
  const out: number[][] = [];
  for (let h = 0; h < nHead; h++) for (let i = 0; i < half; i++) for (let j = 0; j < 2; j++) out.push(w[h * 2 * half + j * half + i] ?? []);
  return out;
}

void test('Q/K permutation equals convert_hf_to_gguf permute and inverts exactly', () => {
  const rows = 12; // 3 heads of 4
  const cols = 2;
  const w = Array.from({ length: rows }, (_, r) => [r * 10, r * 10 + 1]);
  const flat = Float32Array.from(w.flat());
  const permuted = qkHalvesToInterleaved(flat, rows, 3);
  assert.deepEqual(Array.from(permuted), numpyPermute(w, 3).flat());
  // head 0: rows [0, 2, 1, 3] — pairs (0,2) and (1,3) of the rotate_half layout become adjacent
  assert.deepEqual(Array.from(permuted.subarray(0, 4 * cols)), [0, 1, 20, 21, 10, 11, 30, 31]);
  assert.deepEqual(qkInterleavedToHalves(permuted, rows, 3), flat);
  const bias = Float32Array.from({ length: 8 }, (_, i) => i);
  assert.deepEqual(Array.from(qkHalvesToInterleaved(bias, 8, 2)), [0, 2, 1, 3, 4, 6, 5, 7]);
  assert.throws(() => qkHalvesToInterleaved(flat, rows, 4), /do not split into 4 heads of an even size/);
});

const tinyllama: HfLlamaConfig = {
  model_type: 'llama',
  vocab_size: 32000,
  hidden_size: 2048,
  intermediate_size: 5632,
  num_hidden_layers: 22,
  num_attention_heads: 32,
  num_key_value_heads: 4,
  max_position_embeddings: 2048,
  rms_norm_eps: 1e-5,
  rope_theta: 10000,
};

void test('config → metadata uses llama.cpp key names and types, and inverts', () => {
  const kv = hfConfigToGgufMetadata(tinyllama, { name: 'TinyLlama', fileType: 'q8_0' });
  const byKey = new Map(kv.map((e) => [e.key, e]));
  assert.deepEqual(byKey.get('llama.attention.head_count_kv'), { key: 'llama.attention.head_count_kv', type: 'uint32', value: 4 });
  assert.equal(byKey.get('llama.attention.layer_norm_rms_epsilon')?.type, 'float32');
  assert.equal(byKey.get('llama.rope.dimension_count')?.value, 64);
  assert.equal(byKey.get('general.file_type')?.value, 7);
  // values go through float32 in a real file; the inverse recovers the decimal
  const md = new Map(kv.map((e) => [e.key, e.type === 'float32' ? Math.fround(e.value as number) : e.value]));
  assert.deepEqual(ggufMetadataToHfConfig(md), tinyllama);

  const qwen: HfLlamaConfig = {
    ...tinyllama,
    model_type: 'qwen2',
    head_dim: 128,
    rope_theta: 1000000,
    rms_norm_eps: 1e-6,
    rope_scaling: { rope_type: 'yarn', factor: 4, original_max_position_embeddings: 32768 },
  };
  const md2 = new Map(hfConfigToGgufMetadata(qwen).map((e) => [e.key, e.type === 'float32' ? Math.fround(e.value as number) : e.value]));
  assert.equal(md2.get('qwen2.rope.scaling.type'), 'yarn');
  assert.deepEqual(ggufMetadataToHfConfig(md2), qwen);
  md2.delete('qwen2.block_count');
  assert.throws(() => ggufMetadataToHfConfig(md2), /qwen2\.block_count is missing/);
});

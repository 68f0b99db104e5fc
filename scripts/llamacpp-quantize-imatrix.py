#!/usr/bin/env python3
"""llama-quantize --imatrix, through ctypes: llama_model_quantize in node-llama-cpp's prebuilt libllama with the
importance matrix and the quantize.imatrix.* metadata that tools/quantize/quantize.cpp passes to it. The reference
for `nomoat quantize --imatrix` (test/quantize-imatrix.test.ts).
Usage (from the project root, node-llama-cpp installed): llamacpp-quantize-imatrix.py IN.gguf OUT.gguf FTYPE IMATRIX.dat
FTYPE: a llama_ftype number from llama.h (2 Q4_0, 7 Q8_0, 14 Q4_K_S, 15 Q4_K_M, 16 Q5_K_S, 17 Q5_K_M, 18 Q6_K).
IMATRIX: a legacy .dat file (read as quantize.cpp's load_imatrix does: values / ncall; chunk count and dataset from
the optional trailer). The structs follow include/llama.h of the llama.cpp bundled with node-llama-cpp 3.21.1."""
import ctypes, glob, os, struct, sys
inp, out, ftype, imatrix_path = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4]
bins = sorted(glob.glob('node_modules/@node-llama-cpp/linux-x64/bins/*/'))
if not bins: print('no node-llama-cpp linux-x64 binaries under node_modules'); sys.exit(2)
d = bins[0]
for lib in ('libggml-base.so', 'libggml.v0.4.0.so', 'libllama-common.so'):
    p = os.path.join(d, lib)
    if os.path.exists(p): ctypes.CDLL(p, mode=ctypes.RTLD_GLOBAL)
llama = ctypes.CDLL(glob.glob(os.path.join(d, 'libllama*.so'))[0], mode=ctypes.RTLD_GLOBAL)

# ---- the legacy imatrix file, as common_imatrix_load_legacy + load_imatrix read it
raw = open(imatrix_path, 'rb').read()
pos = 0
def take(fmt):
    global pos
    v = struct.unpack_from(fmt, raw, pos); pos += struct.calcsize(fmt); return v
(n_entries,) = take('<i')
entries = {}
for _ in range(n_entries):
    (n,) = take('<i'); name = raw[pos:pos + n].decode(); pos += n
    ncall, nval = take('<ii')
    vals = take(f'<{nval}f')
    # float / (float)ncall, in float32 as the C does
    entries[name] = (ctypes.c_float * nval)(*[struct.unpack('<f', struct.pack('<f', v / struct.unpack('<f', struct.pack('<f', float(ncall)))[0]))[0] if ncall > 0 else v for v in vals])
chunks, dataset = 0, None
if pos < len(raw):
    (chunks,) = take('<i'); (n,) = take('<i')
    if n > 0: dataset = raw[pos:pos + n].decode()

class ImatrixData(ctypes.Structure):
    _fields_ = [('name', ctypes.c_char_p), ('data', ctypes.POINTER(ctypes.c_float)), ('size', ctypes.c_size_t)]
class KvOverride(ctypes.Structure):
    class Val(ctypes.Union):
        _fields_ = [('val_i64', ctypes.c_int64), ('val_f64', ctypes.c_double), ('val_bool', ctypes.c_bool), ('val_str', ctypes.c_char * 128)]
    _anonymous_ = ('v',)
    _fields_ = [('tag', ctypes.c_int), ('key', ctypes.c_char * 128), ('v', Val)]
INT, STR = 0, 3

names = [k.encode() for k in entries]
idata = (ImatrixData * (len(entries) + 1))()
for i, (k, v) in enumerate(entries.items()):
    idata[i].name = names[i]; idata[i].data = ctypes.cast(v, ctypes.POINTER(ctypes.c_float)); idata[i].size = len(v)
kvs = [(STR, b'quantize.imatrix.file', imatrix_path.encode()[:127])]
if dataset is not None: kvs.append((STR, b'quantize.imatrix.dataset', dataset.encode()[:127]))
kvs.append((INT, b'quantize.imatrix.entries_count', len(entries)))
if chunks > 0: kvs.append((INT, b'quantize.imatrix.chunks_count', chunks))
kvo = (KvOverride * (len(kvs) + 1))()
for i, (tag, key, val) in enumerate(kvs):
    kvo[i].tag = tag; kvo[i].key = key
    if tag == STR: kvo[i].val_str = val
    else: kvo[i].val_i64 = val

class Params(ctypes.Structure):
    _fields_ = [('nthread', ctypes.c_int32), ('ftype', ctypes.c_int), ('output_tensor_type', ctypes.c_int),
                ('token_embedding_type', ctypes.c_int), ('allow_requantize', ctypes.c_bool), ('quantize_output_tensor', ctypes.c_bool),
                ('only_copy', ctypes.c_bool), ('pure', ctypes.c_bool), ('keep_split', ctypes.c_bool), ('dry_run', ctypes.c_bool),
                ('imatrix', ctypes.c_void_p), ('kv_overrides', ctypes.c_void_p), ('tt_overrides', ctypes.c_void_p),
                ('prune_layers', ctypes.c_void_p), ('max_buf_size', ctypes.c_size_t)]
llama.llama_model_quantize_default_params.restype = Params
llama.llama_model_quantize.argtypes = [ctypes.c_char_p, ctypes.c_char_p, ctypes.POINTER(Params)]
llama.llama_model_quantize.restype = ctypes.c_uint32
llama.llama_backend_init()
p = llama.llama_model_quantize_default_params()
p.ftype = ftype; p.nthread = 2
p.imatrix = ctypes.cast(idata, ctypes.c_void_p); p.kv_overrides = ctypes.cast(kvo, ctypes.c_void_p)
rc = llama.llama_model_quantize(inp.encode(), out.encode(), ctypes.byref(p))
print(f'llama_model_quantize {inp} -> {out} ftype {ftype} imatrix {imatrix_path} ({len(entries)} entries): rc {rc}')
sys.exit(0 if rc == 0 else 1)

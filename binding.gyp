{
  "targets": [
    {
      "target_name": "nomoat_native",
      "sources": [
        "native/src/addon.c",
        "native/src/addon_ops.c",
        "native/src/addon_model.c",
        "native/src/pool.c",
        "native/src/cpu.c",
        "native/src/gemm.c",
        "native/src/ops.c",
        "native/src/ops_rows.c",
        "native/src/ops_strided.c",
        "native/src/attention.c",
        "native/src/quant.c",
        "native/src/peak.c",
        "native/src/kernels_generic.c",
        "native/src/kernels_avx2.c",
        "native/src/kernels_avx512.c",
        "native/src/kernels_neon.c",
        "native/src/kernels_quant_generic.c",
        "native/src/kernels_quant_avx2.c",
        "native/src/kernels_quant_avx512.c",
        "native/src/kernels_quant_neon.c"
      ],
      "cflags": ["-O3", "-std=gnu11", "-fno-strict-aliasing", "-ffp-contract=off", "-fopenmp-simd", "-Wall", "-Wno-unused-function"],
      "cflags!": ["-O2"],
      "libraries": ["-lpthread", "-lm"],
      "xcode_settings": {
        "GCC_OPTIMIZATION_LEVEL": "3",
        "OTHER_CFLAGS": ["-std=gnu11", "-fno-strict-aliasing", "-ffp-contract=off", "-fopenmp-simd", "-Wall", "-Wno-unused-function"]
      },
      "conditions": [
        ["target_arch=='x64'", {
          "cflags": ["-march=x86-64"]
        }]
      ]
    }
  ]
}

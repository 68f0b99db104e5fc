{
  "targets": [
    {
      "target_name": "nomoat_native",
      "sources": [
        "native/src/addon.c",
        "native/src/pool.c",
        "native/src/cpu.c",
        "native/src/kernels_generic.c",
        "native/src/kernels_avx2.c",
        "native/src/kernels_avx512.c",
        "native/src/kernels_neon.c"
      ],
      "cflags": ["-O3", "-std=gnu11", "-fno-strict-aliasing", "-ffp-contract=off", "-Wall", "-Wno-unused-function"],
      "cflags!": ["-O2"],
      "libraries": ["-lpthread", "-lm"],
      "conditions": [
        ["target_arch=='x64'", {
          "cflags": ["-march=x86-64"]
        }]
      ]
    }
  ]
}

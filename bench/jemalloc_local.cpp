// libkmm_bench_jemalloc.so: the whole of libjemalloc_pic.a, exporting only mallocx, dallocx,
// sdallocx, sallocx and mallctl (jemalloc_local.map). slab_bench calls jemalloc through it
// without jemalloc replacing malloc in the process. This file is only the library's anchor.
extern "C" int kmm_bench_jemalloc_anchor;
int kmm_bench_jemalloc_anchor = 0;

package loader

// The BPF objects and their Go bindings are generated and committed, so
// `go build` needs no clang. `make generate` reproduces them.
//go:generate go tool bpf2go -cc $BPF_CLANG -cflags $BPF_CFLAGS -target bpfel -type vip_key -type vip_meta -type vip_addr_key -type real -type flow_key -type flow -type lb_config -type counter -type stat_reason director ../bpf/director.c -- -I../bpf
//go:generate go tool bpf2go -cc $BPF_CLANG -cflags $BPF_CFLAGS -target bpfel bench ../bpf/bench.c -- -I../bpf

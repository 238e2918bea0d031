//go:build ignore
// SPDX-License-Identifier: GPL-2.0
/*
 * Programs used only by `make bench` to put director's cost per packet next
 * to a floor.
 *
 * xdp_floor is the least an XDP forwarder can do: swap the MACs, XDP_TX.
 *
 * xdp_new_flow_driver makes BPF_PROG_TEST_RUN's repeat loop measure new
 * flows: repeat runs the program again on the frame it already changed, so a
 * flow would be new only once. The driver adds one to the IPv4 source
 * address and tail-calls the program in bench_next, which then sees a flow
 * it has never seen, every time. Its own cost is measured by pointing
 * bench_next at xdp_floor.
 */
#include "include/types.h"
#include "include/bpf/bpf_helpers.h"
#include "include/bpf/bpf_endian.h"

char LICENSE[] SEC("license") = "GPL";

struct {
	__uint(type, BPF_MAP_TYPE_PROG_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, __u32);
} bench_next SEC(".maps");

SEC("xdp")
int xdp_floor(struct xdp_md *ctx)
{
	void *data = (void *)(long)ctx->data;
	void *data_end = (void *)(long)ctx->data_end;
	struct ethhdr *eth = data;
	__u8 tmp[ETH_ALEN];

	if ((void *)(eth + 1) > data_end)
		return XDP_DROP;
	__builtin_memcpy(tmp, eth->h_dest, ETH_ALEN);
	__builtin_memcpy(eth->h_dest, eth->h_source, ETH_ALEN);
	__builtin_memcpy(eth->h_source, tmp, ETH_ALEN);
	return XDP_TX;
}

SEC("xdp")
int xdp_new_flow_driver(struct xdp_md *ctx)
{
	void *data = (void *)(long)ctx->data;
	void *data_end = (void *)(long)ctx->data_end;
	struct iphdr *iph = data + sizeof(struct ethhdr);

	if ((void *)(iph + 1) > data_end)
		return XDP_ABORTED;
	iph->saddr = bpf_htonl(bpf_ntohl(iph->saddr) + 1);
	bpf_tail_call(ctx, &bench_next, 0);
	return XDP_ABORTED;
}

//go:build ignore
// SPDX-License-Identifier: GPL-2.0
/*
 * director's XDP program: direct-routing (DR) L4 load balancing.
 *
 * A packet to a VIP gets its destination MAC rewritten to a real server's
 * and its source MAC to this interface's, and leaves through the interface it
 * came in on (XDP_TX). The IP header and payload are never touched: the real
 * holds the VIP on lo and answers the client directly.
 *
 * New flows pick their real from the VIP's Maglev table at hash % ring_size;
 * the connection table then keeps the flow on that real while the table
 * changes. Everything that is not a VIP flow goes to the stack untouched, and
 * malformed packets are dropped, never forwarded.
 */
#include "director.h"
#include "include/bpf/bpf_helpers.h"
#include "include/bpf/bpf_endian.h"

char LICENSE[] SEC("license") = "GPL";

/* --- maps -------------------------------------------------------------- */

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct lb_config);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} config SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, DEFAULT_MAX_VIPS);
	__type(key, struct vip_key);
	__type(value, struct vip_meta);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} vips SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, DEFAULT_MAX_VIPS);
	__type(key, struct vip_addr_key);
	__type(value, __u32); /* number of VIPs on the address */
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} vip_addrs SEC(".maps");

struct ring {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, DEFAULT_RING_SIZE);
	__type(key, __u32);
	__type(value, __u32);
};

/*
 * One Maglev table per VIP id. The loader fills a fresh inner map and then
 * swaps it in with one update of the outer slot, so a packet sees either the
 * whole old table or the whole new one.
 */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY_OF_MAPS);
	__uint(max_entries, DEFAULT_MAX_VIPS);
	__type(key, __u32);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
	__array(values, struct ring);
} rings SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, DEFAULT_MAX_REALS);
	__type(key, __u32);
	__type(value, struct real);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} reals SEC(".maps");

/*
 * The connection table. BPF_F_NO_COMMON_LRU gives each CPU its own LRU list
 * (no cross-CPU lock on insert or eviction, as with Katran's per-CPU tables)
 * while lookups stay global, so a flow whose packets move between CPUs still
 * finds its entry.
 */
struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, DEFAULT_FLOW_ENTRIES);
	__uint(map_flags, BPF_F_NO_COMMON_LRU);
	__type(key, struct flow_key);
	__type(value, struct flow);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} flows SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, DEFAULT_MAX_VIPS);
	__type(key, __u32);
	__type(value, struct counter);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} vip_stats SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, DEFAULT_MAX_REALS);
	__type(key, __u32);
	__type(value, struct counter);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} real_stats SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, STAT_MAX);
	__type(key, enum stat_reason);
	__type(value, __u64);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} stats SEC(".maps");

/* --- hashing ----------------------------------------------------------- */

/*
 * Bob Jenkins' lookup3 hashword() (public domain), the function behind the
 * kernel's jhash2. loader/hash.go mirrors it so tests can predict picks.
 */
static __always_inline __u32 rol32(__u32 w, __u32 s)
{
	return (w << s) | (w >> (32 - s));
}

#define JMIX(a, b, c)                                                          \
	do {                                                                   \
		a -= c; a ^= rol32(c, 4); c += b;                              \
		b -= a; b ^= rol32(a, 6); a += c;                              \
		c -= b; c ^= rol32(b, 8); b += a;                              \
		a -= c; a ^= rol32(c, 16); c += b;                             \
		b -= a; b ^= rol32(a, 19); a += c;                             \
		c -= b; c ^= rol32(b, 4); b += a;                              \
	} while (0)

#define JFINAL(a, b, c)                                                        \
	do {                                                                   \
		c ^= b; c -= rol32(b, 14);                                     \
		a ^= c; a -= rol32(c, 11);                                     \
		b ^= a; b -= rol32(a, 25);                                     \
		c ^= b; c -= rol32(b, 16);                                     \
		a ^= c; a -= rol32(c, 4);                                      \
		b ^= a; b -= rol32(a, 14);                                     \
		c ^= b; c -= rol32(b, 24);                                     \
	} while (0)

#define JINIT(n, seed) (0xdeadbeef + ((__u32)(n) << 2) + (seed))

/* The flow hash: every field of the 5-tuple. */
static __always_inline __u32 hash_flow(const struct flow_key *fk, __u32 seed)
{
	__u32 ports = ((__u32)fk->sport << 16) | fk->dport;
	__u32 a, b, c;

	if (fk->family == AF_INET4) {
		a = b = c = JINIT(4, seed);
		a += fk->src[0];
		b += fk->dst[0];
		c += ports;
		JMIX(a, b, c);
		a += fk->proto;
		JFINAL(a, b, c);
		return c;
	}
	a = b = c = JINIT(10, seed);
	a += fk->src[0]; b += fk->src[1]; c += fk->src[2];
	JMIX(a, b, c);
	a += fk->src[3]; b += fk->dst[0]; c += fk->dst[1];
	JMIX(a, b, c);
	a += fk->dst[2]; b += fk->dst[3]; c += ports;
	JMIX(a, b, c);
	a += fk->proto;
	JFINAL(a, b, c);
	return c;
}

/* Source affinity: the client's address alone (HAProxy `balance source`). */
static __always_inline __u32 hash_source(const struct flow_key *fk, __u32 seed)
{
	__u32 a, b, c;

	if (fk->family == AF_INET4) {
		a = b = c = JINIT(1, seed);
		a += fk->src[0];
		JFINAL(a, b, c);
		return c;
	}
	a = b = c = JINIT(4, seed);
	a += fk->src[0]; b += fk->src[1]; c += fk->src[2];
	JMIX(a, b, c);
	a += fk->src[3];
	JFINAL(a, b, c);
	return c;
}

/*
 * A 16-bit length field in host order, with bounds older verifiers can see:
 * 6.1 and 6.12 lose a register's bounds through a byte swap and then refuse
 * to add it to a packet pointer. The empty asm keeps clang from folding away
 * the mask that restores them.
 */
static __always_inline __u32 len16(__be16 v)
{
	__u32 x = bpf_ntohs(v);

	asm volatile("" : "+r"(x));
	return x & 0xffff;
}

/* --- counters ---------------------------------------------------------- */

static __always_inline void count(__u32 reason)
{
	__u64 *v = bpf_map_lookup_elem(&stats, &reason);

	if (v)
		*v += 1;
}

static __always_inline int pass(__u32 reason)
{
	count(reason);
	return XDP_PASS;
}

static __always_inline int drop(__u32 reason)
{
	count(reason);
	return XDP_DROP;
}

static __always_inline void count_to(void *map, __u32 id, __u64 bytes, int new_flow)
{
	struct counter *c = bpf_map_lookup_elem(map, &id);

	if (!c)
		return;
	c->packets += 1;
	c->bytes += bytes;
	c->new_flows += new_flow;
}

/* --- forwarding -------------------------------------------------------- */

static __always_inline int is_ipv6_ext(__u8 nh)
{
	switch (nh) {
	case 0:   /* hop-by-hop options */
	case 43:  /* routing */
	case 44:  /* fragment */
	case 50:  /* ESP */
	case 51:  /* AH */
	case 60:  /* destination options */
	case 135: /* mobility */
	case 139: /* HIP */
	case 140: /* shim6 */
	case 253: /* experimental */
	case 254:
		return 1;
	}
	return 0;
}

/*
 * forward sends the frame to the real that owns fk (a client -> VIP flow),
 * or returns the verdict for a packet that is not one of our flows.
 * icmp is set for an ICMP error about fk: such a packet follows the flow's
 * real but never creates a connection-table entry. syn is set for a TCP
 * SYN without ACK: the first packet of a connection.
 */
static __always_inline int forward(struct ethhdr *eth, struct flow_key *fk,
				   __u64 len, int icmp, int syn)
{
	struct vip_key vk = {};
	struct vip_meta *vm;
	struct lb_config *cfg;
	struct real *r;
	struct flow *f;
	__u32 zero = 0, vip_id, rid, idx, h;
	void *ring;
	__u32 *slot;
	int new_flow = 0;

	__builtin_memcpy(vk.addr, fk->dst, sizeof(vk.addr));
	vk.port = fk->dport;
	vk.proto = fk->proto;
	vk.family = fk->family;
	vm = bpf_map_lookup_elem(&vips, &vk);
	if (!vm) {
		vk.port = 0;
		vm = bpf_map_lookup_elem(&vips, &vk);
		if (!vm)
			return pass(icmp ? STAT_PASS_ICMP : STAT_PASS_NO_SERVICE);
	}
	vip_id = vm->id;

	if (vm->flags & VIP_F_LOCAL) {
		count_to(&vip_stats, vip_id, len, 0);
		return pass(STAT_PASS_LOCAL);
	}

	cfg = bpf_map_lookup_elem(&config, &zero);
	if (!cfg)
		return drop(STAT_DROP_NO_REAL);

	f = bpf_map_lookup_elem(&flows, fk);
	if (f) {
		rid = f->real_id;
		r = bpf_map_lookup_elem(&reals, &rid);
		/*
		 * A draining real keeps its flows, but a SYN is a new
		 * connection even when a client reuses a 5-tuple the table
		 * still holds: it is picked afresh (as IPVS reschedules on
		 * connection reuse for a weight-0 server).
		 */
		if (r && r->state != REAL_DOWN && r->gen == f->gen &&
		    r->vip_id == vip_id && !(syn && r->state == REAL_DRAIN)) {
			count(STAT_CT_HIT);
			goto tx;
		}
	}
	count(STAT_CT_MISS);

	if (vm->flags & VIP_F_SOURCE_HASH)
		h = hash_source(fk, cfg->seed);
	else
		h = hash_flow(fk, cfg->seed);
	ring = bpf_map_lookup_elem(&rings, &vip_id);
	if (!ring || cfg->ring_size == 0)
		return drop(STAT_DROP_NO_REAL);
	idx = h % cfg->ring_size;
	slot = bpf_map_lookup_elem(ring, &idx);
	if (!slot)
		return drop(STAT_DROP_NO_REAL);
	rid = *slot;
	r = bpf_map_lookup_elem(&reals, &rid);
	if (!r || r->state != REAL_UP || r->vip_id != vip_id)
		return drop(STAT_DROP_NO_REAL);

	if (!icmp) {
		struct flow nf = { .real_id = rid, .gen = r->gen };

		bpf_map_update_elem(&flows, fk, &nf, BPF_ANY);
		new_flow = 1;
	}

tx:
	__builtin_memcpy(eth->h_dest, r->mac, ETH_ALEN);
	__builtin_memcpy(eth->h_source, cfg->mac, ETH_ALEN);
	count_to(&vip_stats, vip_id, len, new_flow);
	count_to(&real_stats, rid, len, new_flow);
	count(icmp ? STAT_TX_ICMP_PTB : STAT_TX);
	return XDP_TX;
}

/*
 * ICMPv4 "fragmentation needed" about a VIP flow: a router on the path of
 * the real's reply (VIP -> client) could not forward it. The quoted header
 * is that reply, so the flow is the quoted one reversed.
 */
static __always_inline int icmp4(struct ethhdr *eth, struct icmphdr *ic,
				 void *data_end, __u64 len)
{
	struct flow_key fk = {};
	struct iphdr *in;
	__be16 *ports;

	if ((void *)(ic + 1) > data_end)
		return drop(STAT_DROP_MALFORMED);
	if (ic->type != ICMP_DEST_UNREACH || ic->code != ICMP_FRAG_NEEDED)
		return pass(STAT_PASS_ICMP);
	in = (void *)(ic + 1);
	if ((void *)(in + 1) > data_end)
		return drop(STAT_DROP_MALFORMED);
	if (in->version != 4 || in->ihl < 5)
		return drop(STAT_DROP_MALFORMED);
	if (in->protocol != IPPROTO_TCP && in->protocol != IPPROTO_UDP)
		return pass(STAT_PASS_ICMP);
	ports = (void *)in + in->ihl * 4;
	if ((void *)(ports + 2) > data_end)
		return drop(STAT_DROP_MALFORMED);

	fk.src[0] = in->daddr;
	fk.dst[0] = in->saddr;
	fk.sport = ports[1];
	fk.dport = ports[0];
	fk.proto = in->protocol;
	fk.family = AF_INET4;
	return forward(eth, &fk, len, 1, 0);
}

/* ICMPv6 "packet too big" about a VIP flow, as icmp4. */
static __always_inline int icmp6(struct ethhdr *eth, struct icmphdr *ic,
				 void *data_end, __u64 len)
{
	struct flow_key fk = {};
	struct ipv6hdr *in;
	__be16 *ports;

	if ((void *)(ic + 1) > data_end)
		return drop(STAT_DROP_MALFORMED);
	if (ic->type != ICMPV6_PKT_TOOBIG)
		return pass(STAT_PASS_ICMP);
	in = (void *)(ic + 1);
	if ((void *)(in + 1) > data_end)
		return drop(STAT_DROP_MALFORMED);
	if (in->version != 6)
		return drop(STAT_DROP_MALFORMED);
	if (in->nexthdr != IPPROTO_TCP && in->nexthdr != IPPROTO_UDP)
		return pass(STAT_PASS_ICMP);
	ports = (void *)(in + 1);
	if ((void *)(ports + 2) > data_end)
		return drop(STAT_DROP_MALFORMED);

	__builtin_memcpy(fk.src, in->daddr, sizeof(fk.src));
	__builtin_memcpy(fk.dst, in->saddr, sizeof(fk.dst));
	fk.sport = ports[1];
	fk.dport = ports[0];
	fk.proto = in->nexthdr;
	fk.family = AF_INET6;
	return forward(eth, &fk, len, 1, 0);
}

/*
 * l4_ports reads the ports of a TCP or UDP header that starts at l4 and may
 * use at most avail bytes (what the IP length fields leave for it). It
 * returns -1 for a header cut short or lying about its own length, 1 for a
 * TCP SYN without ACK, 0 otherwise.
 */
static __always_inline int l4_ports(struct flow_key *fk, void *l4,
				    void *data_end, __u32 avail)
{
	if (fk->proto == IPPROTO_TCP) {
		struct tcphdr *th = l4;

		if ((void *)(th + 1) > data_end)
			return -1;
		if (th->doff < 5 || th->doff * 4 > avail)
			return -1;
		fk->sport = th->source;
		fk->dport = th->dest;
		return th->syn && !th->ack;
	}
	struct udphdr *uh = l4;
	__u32 ulen;

	if ((void *)(uh + 1) > data_end)
		return -1;
	ulen = len16(uh->len);
	if (ulen < sizeof(*uh) || ulen > avail)
		return -1;
	fk->sport = uh->source;
	fk->dport = uh->dest;
	return 0;
}

static __always_inline int ipv4(struct ethhdr *eth, struct iphdr *iph,
				void *data_end, __u64 len)
{
	struct vip_addr_key ak = {};
	struct flow_key fk = {};
	__u32 hlen, tot;
	int syn;

	if ((void *)(iph + 1) > data_end)
		return drop(STAT_DROP_MALFORMED);
	if (iph->version != 4 || iph->ihl < 5)
		return drop(STAT_DROP_MALFORMED);
	hlen = iph->ihl * 4;
	tot = len16(iph->tot_len);
	if (tot < hlen || (void *)iph + tot > data_end)
		return drop(STAT_DROP_MALFORMED);

	ak.addr[0] = iph->daddr;
	ak.family = AF_INET4;
	if (!bpf_map_lookup_elem(&vip_addrs, &ak))
		return pass(STAT_PASS_NOT_VIP);

	/* No ports to hash in a fragment: see README, "Limits". */
	if (iph->frag_off & bpf_htons(IP_MF | IP_OFFSET))
		return drop(STAT_DROP_FRAGMENT);

	switch (iph->protocol) {
	case IPPROTO_TCP:
	case IPPROTO_UDP:
		break;
	case IPPROTO_ICMP:
		return icmp4(eth, (void *)iph + hlen, data_end, len);
	default:
		return pass(STAT_PASS_NO_SERVICE);
	}

	fk.src[0] = iph->saddr;
	fk.dst[0] = iph->daddr;
	fk.proto = iph->protocol;
	fk.family = AF_INET4;
	syn = l4_ports(&fk, (void *)iph + hlen, data_end, tot - hlen);
	if (syn < 0)
		return drop(STAT_DROP_MALFORMED);
	return forward(eth, &fk, len, 0, syn);
}

static __always_inline int ipv6(struct ethhdr *eth, struct ipv6hdr *ip6,
				void *data_end, __u64 len)
{
	struct vip_addr_key ak = {};
	struct flow_key fk = {};
	__u32 plen;
	int syn;

	if ((void *)(ip6 + 1) > data_end)
		return drop(STAT_DROP_MALFORMED);
	if (ip6->version != 6)
		return drop(STAT_DROP_MALFORMED);
	plen = len16(ip6->payload_len);
	if ((void *)(ip6 + 1) + plen > data_end)
		return drop(STAT_DROP_MALFORMED);

	__builtin_memcpy(ak.addr, ip6->daddr, sizeof(ak.addr));
	ak.family = AF_INET6;
	if (!bpf_map_lookup_elem(&vip_addrs, &ak))
		return pass(STAT_PASS_NOT_VIP);

	switch (ip6->nexthdr) {
	case IPPROTO_TCP:
	case IPPROTO_UDP:
		break;
	case IPPROTO_ICMPV6:
		return icmp6(eth, (void *)(ip6 + 1), data_end, len);
	default:
		if (is_ipv6_ext(ip6->nexthdr))
			return pass(STAT_PASS_IPV6_EXT);
		return pass(STAT_PASS_NO_SERVICE);
	}

	__builtin_memcpy(fk.src, ip6->saddr, sizeof(fk.src));
	__builtin_memcpy(fk.dst, ip6->daddr, sizeof(fk.dst));
	fk.proto = ip6->nexthdr;
	fk.family = AF_INET6;
	syn = l4_ports(&fk, (void *)(ip6 + 1), data_end, plen);
	if (syn < 0)
		return drop(STAT_DROP_MALFORMED);
	return forward(eth, &fk, len, 0, syn);
}

SEC("xdp")
int xdp_director(struct xdp_md *ctx)
{
	void *data = (void *)(long)ctx->data;
	void *data_end = (void *)(long)ctx->data_end;
	struct ethhdr *eth = data;
	__u64 len = data_end - data;
	void *l3 = eth + 1;
	__be16 proto;

	if (l3 > data_end)
		return drop(STAT_DROP_MALFORMED);
	proto = eth->h_proto;
	if (proto == bpf_htons(ETH_P_8021Q) || proto == bpf_htons(ETH_P_8021AD)) {
		struct vlan_hdr *vh = l3;

		if ((void *)(vh + 1) > data_end)
			return drop(STAT_DROP_MALFORMED);
		proto = vh->h_vlan_encapsulated_proto;
		l3 = vh + 1;
	}
	if (proto == bpf_htons(ETH_P_IP))
		return ipv4(eth, l3, data_end, len);
	if (proto == bpf_htons(ETH_P_IPV6))
		return ipv6(eth, l3, data_end, len);
	/* ARP, LLDP, a second VLAN tag...: not ours. */
	return pass(STAT_PASS_NOT_IP);
}

/* SPDX-License-Identifier: GPL-2.0 */
/*
 * Map layouts shared between the XDP program and the Go loader. Every struct
 * here is mirrored by bpf2go into loader/director_bpfel.go; keep them free of
 * implicit padding so both sides agree byte for byte.
 */
#ifndef __DIRECTOR_H
#define __DIRECTOR_H

#include "include/types.h"

#define AF_INET4 4
#define AF_INET6 6

/* Default sizes; the loader sets the real ones at load time. */
#define DEFAULT_MAX_VIPS 512
#define DEFAULT_MAX_REALS 4096
#define DEFAULT_RING_SIZE 65537
#define DEFAULT_FLOW_ENTRIES 1000000

/* A ring slot that names no real. */
#define REAL_NONE 0xFFFFFFFF

/* A service: address, port (0 = every port) and protocol. */
struct vip_key {
	__u32 addr[4]; /* IPv4 in addr[0], network order */
	__be16 port;
	__u8 proto;
	__u8 family;
};

#define VIP_F_SOURCE_HASH (1U << 0) /* hash the source address only */
#define VIP_F_LOCAL (1U << 1)       /* hand packets to the local stack */

struct vip_meta {
	__u32 id; /* index into rings and vip_stats */
	__u32 flags;
};

/* An address that carries at least one VIP. */
struct vip_addr_key {
	__u32 addr[4];
	__u32 family;
};

enum real_state {
	REAL_DOWN = 0,  /* no flows at all: existing flows are re-picked */
	REAL_UP = 1,    /* new and existing flows */
	REAL_DRAIN = 2, /* existing flows only */
};

/* A real server of one VIP. */
struct real {
	__u8 mac[ETH_ALEN];
	__u8 state;
	__u8 family;
	__u32 vip_id;
	__u32 gen; /* bumped when the id is given to another real */
	__u32 addr[4];
};

struct flow_key {
	__u32 src[4];
	__u32 dst[4];
	__be16 sport;
	__be16 dport;
	__u8 proto;
	__u8 family;
	__u16 pad;
};

struct flow {
	__u32 real_id;
	__u32 gen;
};

struct lb_config {
	__u8 mac[ETH_ALEN]; /* the interface's own MAC, the new source MAC */
	__u16 pad;
	__u32 ring_size; /* entries in every Maglev table, a prime */
	__u32 seed;      /* flow-hash seed: the same on both directors */
};

struct counter {
	__u64 packets;
	__u64 bytes;
	__u64 new_flows;
};

enum stat_reason {
	STAT_CT_HIT = 0,      /* flow found in the connection table */
	STAT_CT_MISS,         /* flow picked from the Maglev table */
	STAT_TX,              /* forwarded to a real */
	STAT_TX_ICMP_PTB,     /* of those: ICMP too-big sent to a flow's real */
	STAT_PASS_NOT_IP,     /* not IPv4/IPv6, or stacked VLAN tags */
	STAT_PASS_NOT_VIP,    /* IP, but not addressed to a VIP */
	STAT_PASS_NO_SERVICE, /* VIP address, but no VIP on this port/proto */
	STAT_PASS_LOCAL,      /* a local VIP: handed to the stack */
	STAT_PASS_ICMP,       /* ICMP to a VIP address (echo...): to the stack */
	STAT_PASS_IPV6_EXT,   /* IPv6 with extension headers to a VIP */
	STAT_DROP_MALFORMED,  /* truncated frame or lying length field */
	STAT_DROP_FRAGMENT,   /* IPv4 fragment to a VIP address */
	STAT_DROP_NO_REAL,    /* the VIP has no usable real */
	STAT_MAX,
};

#endif /* __DIRECTOR_H */

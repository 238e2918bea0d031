// Package topo builds multi-host test topologies for director from network
// namespaces: every host (clients, directors, real servers, proxies, plain
// servers) is a namespace with one veth whose peer sits on a bridge in a
// separate "switch" namespace, so nothing touches the root namespace's
// networking. Hosts get deterministic addresses from one IPv4 /24 and one
// IPv6 /64 (10.99.0.0/24, fd00:99::/64 by default) and locally administered
// MACs; real servers are set up for direct routing (VIPs on lo, arp_ignore=1,
// arp_announce=2), directors get the VIPs on their interface and, for native
// XDP, what veth needs (an XDP_PASS program on the bridge-side peer, TX
// checksum offload off on the senders).
//
// Processes started in a host log to per-process files and are stopped by
// Close; Go code runs inside a host with Host.Do (a locked, restored
// thread), and HTTP and TCP clients dial from inside a host.
//
// Every run has a unique prefix (FamilyPrefix + 4 characters) on its
// namespace and link names and a marker under StateDir naming its owning
// process. New first removes what killed runs left behind (see CleanStale);
// Close removes everything the run made. Usable from tests (NewT) and from a
// plain main (New, Close, CloseOnSignal):
//
//	top, err := topo.New(ctx, topo.DRSpec(2, 1, 3))
//	if err != nil { ... }
//	defer top.Close()
//	rs1 := top.Host("rs1")
//	web, err := top.StartWebserver(ctx, rs1)
//	code, body, err := top.Host("cl1").Get(ctx, netip.Addr{}, "http://10.99.0.50/")
package topo

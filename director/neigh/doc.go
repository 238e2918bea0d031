// Package neigh follows the MAC addresses of real servers on one interface.
//
// The XDP program forwards a VIP's packets to a real server by rewriting the
// destination MAC, so the agent needs each real's MAC and must follow it when
// it changes (a new NIC, a moved VM). A Resolver watches a set of IPv4 and
// IPv6 addresses and reports, through a callback, every change of answer:
// first resolution, a new MAC, or the loss of a real with the cause
// ("no ARP reply after 3 tries", "interface eth1 is down", ...).
//
// Two sources feed it:
//
//   - the kernel's neighbour table, read once at start and then followed
//     through a netlink subscription, so a MAC the kernel learns (a gratuitous
//     ARP, traffic from the real) is seen at once;
//   - active probing: an ARP request (IPv4) or a neighbour solicitation to the
//     solicited-node multicast group (IPv6), sent when an address is unknown or
//     the kernel reports it FAILED/INCOMPLETE, and every RefreshInterval
//     (jittered) while resolved, so a moved MAC is noticed within a few
//     seconds even when no traffic flows through the kernel. MaxMisses
//     unanswered probes in a row make the address unresolved.
//
// The resolver never writes to the kernel's table.
//
// The per-address logic is a pure state machine (tracker) stepped with
// explicit times; Resolver.Run wires it to sockets and netlink.
package neigh

// Package vrrp runs VRRP for director: VRRPv3 (RFC 5798 / RFC 9568) over
// IPv4 and IPv6 and VRRPv2 (RFC 3768) with keepalived's auth_type PASS,
// multicast or unicast, interoperating with keepalived on the wire.
//
// The layers, each usable and tested on its own:
//   - packet.go: the advert codec (Advert, Decode, Params.Check) with a
//     typed discard Cause for every validation failure;
//   - engine.go: the state machine (Engine), driven one step at a time
//     through Start/Receive/Discard/SetCheck/Tick/Stop and talking to the
//     world through Conn, Clock, Actions and Notifier;
//   - conn_linux.go, actions_linux.go, track.go, notify.go: the real raw
//     socket, netlink VIPs with gratuitous ARP / unsolicited NA, tracked
//     checks and notify commands;
//   - instance.go: Instance.Run, which ties them together.
package vrrp

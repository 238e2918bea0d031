// Package l7 is director's HTTP tier: the part of HAProxy that classic
// setups use — roundrobin, cookie stickiness, X-Forwarded-For, keep-alive
// on both sides, active health checks, retries and redispatch — built to
// be as fast as HAProxy on the same machine (Engine says how close it is).
//
// # Shape
//
//   - A Backend (backend.go) is a pool of servers with weights, balanced by
//     one of HAProxy's algorithms (balance.go: roundrobin, static-rr,
//     leastconn, source, uri, url_param, random(N), each a small pure
//     policy), with optional cookie stickiness in insert, prefix or
//     rewrite mode (cookie.go), forwarding headers (X-Forwarded-*,
//     Forwarded: headers.go), retries of connection failures and
//     redispatch. Backend.Serve proxies one request; SetWeight,
//     SetDrain and SetMaint change a server's share at run time (a
//     drained server keeps its sticky clients, one in maintenance loses
//     them, as in HAProxy), and KeepAdmin carries them across a reload.
//   - A Frontend (frontend.go) serves HTTP/1.1 with keep-alive on a
//     listener, and HTTP/2 over TLS (tls.go, h2.go), checks requests
//     (validate.go) and limits (listener.go), and hands every request to
//     its Backend or, when it has rules, to a Router (router.go):
//     HAProxy's use_backend and http-request return on host, path prefix
//     or suffix and headers, the first matching rule winning. Upgraded
//     connections are spliced (upgrade.go).
//   - CheckHealth (health.go) runs director/health's Monitor over the
//     servers of backends and applies its transitions; Backend.Targets and
//     Backend.Observe do the same for a caller that owns the Monitor.
//
// # Engine
//
// Measured on a 2-core machine with wrk on loopback against three nginx
// backends (l7/bench: 3 interleaved runs of 10 s, medians), the
// candidates and HAProxy 2.6 doing the same work (roundrobin, cookie
// insert, forwardfor, keep-alive, nbthread 2), CPU time of the proxy
// process per request and requests/s against HAProxy's, at 64 and 256
// connections:
//
//	                                       CPU µs/req    req/s vs HAProxy
//	net/http server + hand-tuned proxy     46    46      0.39x  0.43x
//	  (Transport pools, pooled buffers; GOGC=400: about 40 µs)
//	fasthttp Server + HostClient, plain    16.7  18.1    0.56x  0.84x
//	this package (fasthttp + own parts)    15.5  15.8    0.87x  0.94x
//	HAProxy 2.6                            15.3  15.6    1x     1x
//
// With the removal of most EAGAIN reads (below), make bench-l7 (5
// interleaved runs of 10 s, a quiet machine) measured 11.9 and 14.1 µs a
// request against HAProxy's 12.9 and 13.4 (1.08x and 0.95x), 0.93x and
// 0.88x its requests/s, the same p50 at 64 connections, and a p99 3.6x
// and 1.4x HAProxy's (5.6 ms against 1.6 ms at 64 connections): the tail
// is the gap left.
//
// net/http allocates a Request, its Header map and a response writer per
// request and runs two goroutines per server connection; no tuning of
// GOGC or buffers brings it near HAProxy. fasthttp reuses its request
// and response objects and parses in place, so the request path here
// allocates nothing in steady state (TestServeAllocs). On that base this
// package replaces what profiles showed to cost:
//
//   - fasthttp's per-request socket deadlines (two runtime timer updates a
//     side, about 5%) by HAProxy-style inactivity timeouts that push the
//     deadline forward lazily (timeout.go);
//   - fasthttp's client round trip by its own (transport.go): bodies up to
//     BodyBuffer are read whole and leave in one write with the headers,
//     larger and unknown-length bodies stream through a pooled reader
//     without allocations, and a server connection goes back to the pool
//     on the server's say alone, not closed because the client closed;
//   - the reads that fail with EAGAIN. HAProxy makes two reads and two
//     writes per request; a goroutine that reads right after writing
//     makes a third and fourth read that find nothing yet (3.8 reads a
//     request were counted). The request to a server is written from
//     inside RawConn.Read, so that the goroutine waits for the answer
//     without a read (timeoutConn.sendAndAwait), and a client connection
//     yields to other goroutines between a response and the next read,
//     by when the next request has mostly arrived. 2.3 reads a request
//     are left;
//   - per-request formatting of the client address (cached per
//     connection).
//
// What remains is about 58% kernel time (HAProxy: 50%), about 8%
// goroutine scheduling and about 10% fasthttp's header parsing and
// writing; user time per request is below HAProxy's.
//
// # Event loops
//
// That engine (fasthttp's goroutine per connection, made lean as above)
// stopped short of HAProxy on the tail: at two threads on 2 cores shared
// with wrk and nginx its p99 at 64 connections was 2-3x HAProxy's, at
// one thread 1.4-1.5x. Its scheduler threads never sleep, and the kernel
// takes the CPU from them for a slice in favour of wrk and nginx;
// HAProxy's threads sleep in epoll_wait and win it back at once.
//
// So plain HTTP/1.x is now served as HAProxy serves it (loop.go,
// loopclient.go, loopserver.go): an event loop per thread (the l7
// section's threads, Go's GOMAXPROCS), each a locked OS thread with an
// edge-triggered epoll set holding client and server sockets alike, that
// sleeps in epoll_wait when idle. A new connection goes to the loop with
// the fewest, as HAProxy gives it to the least loaded thread. A request
// costs its reads and writes: two reads and two writes when the client
// and server are quick, no goroutine switch, no netpoller round trip, and
// no allocation (TestLoopAllocs). A short read means the socket is
// drained (the next bytes bring a new edge) unless the peer closed its
// side. Server connections are pooled per loop, last in first out;
// deadlines sit in one indexed heap per loop, each connection in it once.
//
// The loops take the common request: a header section that fits
// MaxHeaderSize with CRLF line ends and passes checkHeader, no body or a
// Content-Length body of up to BodyBuffer, no Expect or Upgrade, a backend
// (not a rule's own answer) none of whose servers is at its maxconn.
// Anything else, and every request after it on that connection, goes to
// the goroutine engine with the bytes read so far (handedConn): chunked
// and large bodies, 100-continue, WebSocket, rule answers, queueing,
// malformed framing and the answers to it. TLS listeners keep the
// goroutine engine. Both engines share the request and response logic
// (Backend.prepare and respond, the cookie code), the counters, the
// access log and the stats, and TestEnginesAgree checks that a client
// gets the same bytes from both for 15 kinds of request; where they
// differ the loops are right (an HTTP/1.0 client gets no chunks, a 204 no
// default Content-Type). Responses are streamed: Content-Length bodies as
// they come, chunked ones checked with the requests' chunk scanner, bodies
// delimited by the server's close re-chunked for HTTP/1.1 clients; a
// client that reads slowly holds the server back once 256 KB wait for
// it. The l7 section's engine: goroutines (FrontendConfig.Engine) goes
// back to the goroutine engine everywhere.
//
// One bench-l7 run (3 interleaved runs of 8 s, medians, HAProxy 2.6 on
// the same nginx backends, the scheduler placing everything on the 2
// cores as it likes):
//
//	64 conns     req/s   p99 ms  CPU µs/req   256 conns: req/s  p99 ms  CPU
//	loops 1t     74,552  2.34    11.6                    79,312  5.95  11.9
//	HAProxy 1t   66,947  1.83    14.3                    69,114  6.28  14.3
//	loops 2t     85,331  3.73    12.1                    82,900  6.83  12.4
//	HAProxy 2t   86,227  1.77    13.2                    80,137  6.67  14.6
//
// Against HAProxy at as many threads: 0.99-1.15x its requests/s, 1.09-1.23x
// its CPU efficiency, the p99 at 256 connections HAProxy's (0.95x, 1.02x),
// at 64 connections 1.28x at one thread and 2.11x at two. (An earlier run
// with the goroutine engine beside them had it at 2.97x at two threads.)
//
// The same bench with -pin (the proxy on a CPU of its own, wrk and nginx
// on the other; 5 runs of 8 s): the loops make 1.27x and 1.37x HAProxy's
// requests/s at 64 and 256 connections, with 1.28x and 1.37x its CPU
// efficiency, and a p99 of 0.85x and 0.83x (1.16 ms against 1.37 at 64,
// each of the 5 runs 1.13-1.31 against 1.27-1.44). So the tail that is
// left is not what the loops do to a request but how the kernel shares
// two cores between the proxy, wrk's two threads and nginx, and a Go
// process fares worse at that than HAProxy:
//
//   - A CPU profile of the loops under wrk: 71% of the samples in read
//     and write (on loopback a write runs the receiver's TCP path too), 3%
//     in epoll_wait, 26% in user code; of that a third is fasthttp parsing
//     the response header, the rest the request's parsing and rewriting,
//     the cookie and the counters.
//   - A bare epoll proxy in Go (no parsing beyond the header's end, a
//     fixed cookie; not kept) had HAProxy's p99 with 9 µs a request; with
//     2 µs of busy work added to each request, wherever in it, its p99
//     went from 1.85 to 2.5-2.7 ms though it still used less CPU per
//     request than HAProxy, whose p99 stayed at 1.6.
//   - Tried on the loops and not kept, each in 5 interleaved runs: one Go
//     P more than loops, so that the runtime never takes a sleeping loop's
//     P; the loops as goroutines parked in Go's netpoller instead of
//     locked threads; epoll_wait as a raw syscall; polling for 10-50 µs
//     before sleeping. None brought the p99 below the runs' spread: the
//     raw syscall and the polling made it worse at one thread, and the
//     netpoller made it several times worse at two.
//   - The tail moves between runs: at 64 connections HAProxy's p99 was
//     1.37-2.10 ms in this session's runs, the loops' 1.8-4.3.
//
// # TLS and HTTP/2
//
// fasthttp speaks HTTP/1.x only. With FrontendConfig.TLS the listener
// wraps each connection in tls.Conn over the timeoutConn (so the
// handshake has the client timeout too) and offers ALPN "h2" and
// "http/1.1". The certificate is chosen by SNI among the certificates'
// DNS names, exact names before "*.parent" wildcards, the first
// certificate by default (tls.go); Frontend.Reload reads the files again
// and swaps the set atomically for new handshakes, or keeps the old set
// and says which file failed. Connections that chose http/1.1 go to the
// same fasthttp server (tlsConn keeps Handshake and ConnectionState
// visible, so IsTLS holds and X-Forwarded-Proto says https); h2
// connections go to golang.org/x/net/http2's Server.ServeConn with a
// net/http handler (h2.go) that converts each request to a fasthttp one,
// calls the same dispatch and converts the response back, streaming
// bodies both ways. The servers stay on HTTP/1.1 keep-alive pools, as
// with HAProxy. HTTP/2 then costs what net/http costs, on the connections
// that ask for it, and plain HTTP/1.1 keeps this engine. Idle HTTP/2
// connections close after KeepAliveTimeout; Shutdown sends them GOAWAY.
// TLS connections are closed without close_notify (see tlsConn.Close).
//
// # Logs and stats
//
// FrontendConfig.AccessLog turns on a JSON line per request with the
// fields of HAProxy's httplog: client, request date, frontend,
// backend/server, the timers TR/Tw/Tc/Tr/Ta (-1 for what did not happen),
// status, bytes sent, the four letters of the termination state (who
// ended the request and when, what became of the sticky cookie) and the
// request line (accesslog.go lists them). The line is written once the
// response has gone out, from fasthttp's ConnState hook, so Ta covers it.
// What it needs is kept in a txn per client connection, which the
// timeoutConn also uses to count bytes: logging allocates nothing
// (TestAccessLogAllocs).
//
// Frontend.Stats and Backend.Stats return the counters of HAProxy's "show
// stat" (stats.go), kept with atomics on the request path: sessions
// (a frontend's are connections, a backend's and a server's requests),
// queue, bytes, statuses by class, errors, retries, redispatches, rates
// over the last second, server states and health checks. WriteCSV writes
// them in HAProxy's CSV, its columns in its order, for the tools that read
// the stats page's ";csv".
//
// # Semantics and limits
//
// Timeouts are inactivity timeouts, as HAProxy's "timeout client" and
// "timeout server": each read or write must progress within them. As in
// HAProxy, RequestTimeout ("timeout http-request") bounds a request's
// header from the connection's start (first request) or first byte
// (later ones), answered 408 and a close; KeepAliveTimeout ("timeout
// http-keep-alive", by default RequestTimeout) bounds the wait for the
// next request, which ends in a silent close. Without either, a
// connection pays nothing for them; with them, a request costs up to
// three socket-deadline updates (timeoutConn.touchPhase).
//
// Requests are limited as HAProxy answers them: a request line and
// headers beyond MaxHeaderSize (tune.bufsize, 16 KB) get 431; a body
// beyond MaxBodySize gets 413, up front from Content-Length (once the
// engine has read the first 8 KB of the body, which fasthttp does before
// the handler) or when a chunked body grows beyond it, before the server
// has been sent anything; MaxConns bounds a listener's connections, and
// those beyond wait in the kernel's backlog, as with HAProxy's maxconn.
//
// Request smuggling: framing that a server or another proxy could read
// differently is refused with 400 and a close. fasthttp refuses two
// Content-Lengths, a list or sign in one, codings other than chunked and
// identity, and control characters; checkHeader (validate.go) refuses what
// it lets through in the header section: Content-Length with
// Transfer-Encoding, Transfer-Encoding other than one "chunked", folded
// lines, bare LF line ends, spaces in names and several Hosts. fasthttp
// does not keep the request line and reads chunk-size lines leniently
// ("5zz" is 5), so the framer (framing.go) checks the raw bytes of every
// HTTP/1 client connection (the plaintext with TLS) as they are read,
// before fasthttp parses them: the request line and header lines end with
// CRLF, and chunked bodies follow RFC 9112's grammar (sizes of 1 to 16 hex
// digits, of which fasthttp reads 15, extensions of tokens and quoted
// strings, CRLF after sizes and data, trailer lines of a token, a colon
// and a value). What a client sent along with the header is checked before
// anything is forwarded; the rest of a chunked body as the transport reads
// it, so a server is sent nothing of a malformed body that fits, with the
// header, in what the transport holds back (captureLimit, 16 KB), and gets
// a larger one cut short with its connection closed. A request whose body
// was not read to its end (the frontend answered it itself, or the server
// failed) closes the client connection, so that no part of a body is ever
// read as a request. The framer costs a plain keep-alive GET one IndexByte
// per line (about 80 ns for 270 bytes, BenchmarkFramerGet) and allocates
// nothing.
//
// Upgrade: a request with Connection: upgrade and an Upgrade header is
// forwarded with both; on 101 the server connection leaves the pool and
// the client connection is hijacked, and the two are spliced until
// either closes or neither sends for TunnelTimeout (HAProxy "timeout
// tunnel", one hour by default). Elsewhere Upgrade is removed as
// hop-by-hop. Trailers of chunked messages are dropped. HTTP/1.0
// requests are sent to servers as HTTP/1.1 (with the frontend's address
// as Host if they had none) so that server connections stay pooled.
package l7

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
// section's threads; Go gets a P more), each a locked OS thread with an
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
// Sharing two cores with wrk and nginx, a loop met three things HAProxy
// does not, all seen with perf sched:
//
//   - Writes woke their readers on the loop's own core. Written as each
//     response came, a response woke wrk on the loop's core and wrk took
//     the CPU at once: the loop, wrk and nginx passed one request at a time
//     round one core in 6 µs slices, the loop thread preempted 25k times a
//     second. A loop now writes at the end of its round, after it has read
//     and processed every event of the epoll_wait (loop.go, endRound), as
//     HAProxy runs its tasks after its reads.
//   - Go's runtime. A loop asleep in epoll_wait keeps its P in a syscall;
//     with no P idle, sysmon took it back after 20 µs and started a
//     spinning thread to find it work, each time a loop slept; and every
//     10 ms it forced a reschedule of each loop, which set its own polling
//     back to every 20 µs. At two threads: 10k sysmon wake-ups a second
//     and 4-13% of a core in the spinning threads. The tier now runs a P
//     more than its loops (Procs) and a loop yields to the scheduler
//     every 5 ms (yieldEvery): about 100 sysmon wake-ups a second. Each
//     such yield hands the locked thread's goroutine through another
//     thread and back: 33-40 µs on average, at most 1 ms in 7 s.
//   - A busy loop kept its CPU from the very thread it had answered. A
//     loop that finds events at every epoll_wait never sleeps, and the
//     kernel lets it run out its slice: at one thread the tail was a wrk
//     thread woken by the loop's write waiting 2.16 ms on the loop's CPU
//     while the loop ran 2.15 ms without a break, the other CPU partly
//     idle. A loop that has not slept for 300 µs now calls sched_yield
//     once (cpushare.go): whoever waits for the CPU runs, and the loop
//     comes back after it; with nobody waiting it costs a syscall.
//
// Tried and not kept (5 interleaved runs each, unless said): epoll_wait
// as a raw syscall (the P never leaves the loop, but the forced
// reschedules remain); the loops as plain goroutines, not locked to
// threads (they wander between threads; p99 up by a fifth to twice);
// sched_setattr slices of 100 µs and 3 ms for the loop threads, and
// SCHED_BATCH (no change); polling epoll for 10-50 µs before sleeping
// (worse: the polling takes the CPU wrk and nginx need), and for 20 µs
// with sched_yield between polls (one run: 4.2 ms); the loops parked in
// Go's netpoller (several times worse at two threads); responses written
// before the requests at the end of a round (within the noise); yielding
// after 50 or 100 µs instead of 300, or to the Go scheduler every 9 ms
// instead of 5 (no better at two threads). Nice -5 on the loop threads
// brought the p99 at one thread to 1.14x HAProxy's before the yield, but
// it takes CPU from the clients and servers by fiat, so it is not the
// default.
//
// A bench-l7 run after the three changes (5 interleaved runs of 10 s,
// medians, HAProxy 2.6 on the same nginx backends, the scheduler placing
// everything on the 2 cores as it likes):
//
//	64 conns     req/s    p99 ms  CPU µs/req   256 conns: req/s  p99 ms  CPU
//	loops 1t     92,065   1.17    9.3                   87,780   5.16  10.6
//	HAProxy 1t   75,091   1.55    13.1                  69,936   5.95  14.2
//	loops 2t     102,939  1.87    9.4                   102,201  4.87  9.7
//	HAProxy 2t   87,429   1.61    13.0                  80,780   6.16  14.5
//
// Against HAProxy at as many threads: 1.18-1.27x its requests/s,
// 1.34-1.49x its CPU efficiency, a p99 of 0.75x (one thread) and 1.16x
// (two) at 64 connections, 0.87x and 0.79x at 256. The machine is noisy:
// HAProxy's own p99 at 64 connections and one thread has been 1.55-2.32
// ms across benches, its requests/s 43k-75k, so compare within a bench.
// Side by side in one bench (5 runs of 8 s), the loops before and after
// the yield: p99 at one thread 2.35 -> 1.32 ms at 64 connections (HAProxy
// 1.90), 5.21 -> 4.56 at 256 (6.30); at two threads 2.43 -> 1.89 (1.62)
// and 5.99 -> 4.67 (6.09); requests/s and CPU per request unchanged.
//
// What is left is the p99 at two threads and 64 connections. There the
// loops are half idle (each sleeps 18-26k times a second) and the
// sched_yield rarely has anyone to yield to: perf sched shows one CPU
// running a loop alone while the other passes wrk's second thread and
// nginx back and forth in 20 µs slices (the loop writing to each in
// turn) and wrk's first thread waits 1.4 ms on that CPU's run queue. The
// kernel counts the two CPUs as evenly loaded; nothing in the loop moves
// wrk.
//
// With -pin (the proxy on a CPU of its own, wrk and nginx on the other)
// after the yield: 1.17x and 1.34x HAProxy's requests/s at 64 and 256
// connections, 1.19x and 1.37x its CPU efficiency, a p99 of 0.87x and
// 0.99x (3 runs of 8 s); in a second bench at 256 connections (5 runs),
// 1.47x, 1.49x and 0.69x, where the loops before the yield made 1.35x,
// 1.38x and 0.75x. Alone on its CPU the yield has nobody to yield to.
// An earlier profile of the loops under wrk: 71% of the samples in
// read and write (on loopback a write runs the receiver's TCP path too),
// 3% in epoll_wait, 26% in user code, of that a third fasthttp parsing
// the response header.
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
// A TLS connection ends with close_notify (tlsConn.Close), which is how
// an HTTP/1.0 client tells a body delimited by the close from a cut one.
// ALPN offers h2, http/1.1 and http/1.0.
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

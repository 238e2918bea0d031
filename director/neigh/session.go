package neigh

import (
	"context"
	"fmt"
	"net"
	"net/netip"
	"strings"
	"sync/atomic"
	"time"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"
)

// maintenancePeriod is how often Run retries what failed: a broken netlink
// subscription, a vanished interface, a socket that could not be opened.
const maintenancePeriod = time.Second

// session is one Run: the netlink handle and subscriptions, the probe
// sockets and the loop's state. Only Run's goroutine touches it.
type session struct {
	r        *Resolver
	h        *netlink.Handle
	stopping atomic.Bool

	ifindex int            // 0 while the interface is gone
	ifi     *net.Interface // nil while down or gone
	hwaddr  net.HardwareAddr

	linkCh    chan netlink.LinkUpdate
	linkDone  chan struct{}
	neighCh   chan netlink.NeighUpdate
	neighDone chan struct{}

	obs chan observation
	arp *arpProber
	ndp *ndpProber
	// arpErr and ndpErr say why a prober could not be opened.
	arpErr, ndpErr string

	timer *time.Timer
}

func (r *Resolver) start() (*session, error) {
	h, err := netlink.NewHandle(unix.NETLINK_ROUTE)
	if err != nil {
		return nil, fmt.Errorf("neigh: netlink: %w", err)
	}
	s := &session{r: r, h: h, obs: make(chan observation, 64)}
	link, err := h.LinkByName(r.cfg.Interface)
	if err != nil {
		h.Close()
		return nil, fmt.Errorf("neigh: interface %q: %w", r.cfg.Interface, err)
	}
	// Subscribe before listing, so nothing falls between the two.
	if err := s.subscribeLinks(); err != nil {
		s.close()
		return nil, err
	}
	if err := s.subscribeNeighs(); err != nil {
		s.close()
		return nil, err
	}
	s.ifindex = link.Attrs().Index
	s.relist()
	s.r.report(s.applyLink(link, time.Now()))
	return s, nil
}

func (s *session) subErr(what string) func(error) {
	return func(err error) {
		if s.stopping.Load() {
			return
		}
		// A message some other process's netlink socket sent to the group
		// is skipped by the library and reported: not ours to act on. It
		// comes as a plain fmt error, so only its text tells.
		if strings.HasPrefix(err.Error(), "Wrong sender portid") {
			s.r.log.Debug().Err(err).Msgf("%s subscription: skipped a message", what)
			return
		}
		s.r.log.Warn().Err(err).Msgf("%s subscription", what)
	}
}

func (s *session) subscribeLinks() error {
	ch, done := make(chan netlink.LinkUpdate, 16), make(chan struct{})
	err := netlink.LinkSubscribeWithOptions(ch, done, netlink.LinkSubscribeOptions{ErrorCallback: s.subErr("link")})
	if err != nil {
		close(done)
		return fmt.Errorf("neigh: subscribe to links: %w", err)
	}
	s.linkCh, s.linkDone = ch, done
	return nil
}

func (s *session) subscribeNeighs() error {
	ch, done := make(chan netlink.NeighUpdate, 64), make(chan struct{})
	err := netlink.NeighSubscribeWithOptions(ch, done, netlink.NeighSubscribeOptions{ErrorCallback: s.subErr("neighbour")})
	if err != nil {
		close(done)
		return fmt.Errorf("neigh: subscribe to neighbours: %w", err)
	}
	s.neighCh, s.neighDone = ch, done
	return nil
}

// relist reloads the kernel's entries for the interface.
func (s *session) relist() {
	if s.ifindex == 0 {
		return
	}
	neighs, err := s.h.NeighList(s.ifindex, 0)
	if err != nil {
		s.r.log.Warn().Err(err).Msg("list neighbours")
		return
	}
	now := time.Now()
	s.r.mu.Lock()
	s.r.t.resetKernel()
	var changes []change
	for _, n := range neighs {
		if addr, k, ok := s.kernelEntry(&n); ok {
			changes = append(changes, s.r.t.kernelUpdate(addr, k, false, true, now)...)
		}
	}
	s.r.mu.Unlock()
	s.r.report(changes)
}

// kernelEntry converts a neighbour of our interface; ok is false for other
// interfaces and for proxy entries.
func (s *session) kernelEntry(n *netlink.Neigh) (netip.Addr, kernelNeigh, bool) {
	if n.LinkIndex != s.ifindex || s.ifindex == 0 || n.Flags&unix.NTF_PROXY != 0 {
		return netip.Addr{}, kernelNeigh{}, false
	}
	addr, ok := netip.AddrFromSlice(n.IP)
	if !ok {
		return netip.Addr{}, kernelNeigh{}, false
	}
	return canon(addr), kernelNeigh{state: n.State, mac: n.HardwareAddr}, true
}

// linkCause says why link is unusable, or "".
func linkCause(link netlink.Link) string {
	a := link.Attrs()
	switch {
	case a.Flags&net.FlagUp == 0:
		return fmt.Sprintf("interface %s is down", a.Name)
	case a.RawFlags&unix.IFF_RUNNING == 0:
		return fmt.Sprintf("interface %s has no carrier", a.Name)
	}
	return ""
}

// applyLink follows the interface's state: down, it stops probing and
// makes every address unresolved; up (again, or with a new MAC), it
// (re)opens the probe sockets and probes everything now.
func (s *session) applyLink(link netlink.Link, now time.Time) []change {
	s.r.mu.Lock()
	defer s.r.mu.Unlock()
	t := s.r.t
	if cause := linkCause(link); cause != "" {
		s.closeProbers()
		if t.down == cause {
			return nil
		}
		return t.linkDown(cause)
	}
	mac := link.Attrs().HardwareAddr
	if t.down == "" && s.ifi != nil && mac.String() == s.hwaddr.String() {
		return nil // nothing that matters changed
	}
	s.closeProbers()
	s.hwaddr = mac
	if err := s.openProbers(); err != nil {
		return t.linkDown(fmt.Sprintf("interface %s: %v", s.r.cfg.Interface, err))
	}
	t.linkUp(now)
	return nil
}

// gone handles the interface's removal.
func (s *session) gone() []change {
	s.r.mu.Lock()
	defer s.r.mu.Unlock()
	s.closeProbers()
	s.ifindex = 0
	s.r.t.resetKernel()
	return s.r.t.linkDown(fmt.Sprintf("interface %s is gone", s.r.cfg.Interface))
}

// openProbers looks the interface up and opens what it can: a prober that
// fails now is retried when a probe needs it.
func (s *session) openProbers() error {
	ifi, err := net.InterfaceByIndex(s.ifindex)
	if err != nil {
		return err
	}
	s.ifi = ifi
	s.openARP()
	s.openNDP()
	return nil
}

func (s *session) openARP() {
	if s.arp != nil || s.ifi == nil {
		return
	}
	c, err := dialARP(s.ifi)
	if err != nil {
		s.arpErr = fmt.Sprintf("cannot send ARP requests on %s: %v", s.ifi.Name, err)
		return
	}
	s.arpErr = ""
	s.arp = newARPProber(c, s.r.log, s.obs)
}

func (s *session) openNDP() {
	if s.ndp != nil || s.ifi == nil {
		return
	}
	src, err := s.ndpSource()
	if err == nil {
		c, lerr := listenNDP(s.ifi, src)
		if lerr == nil {
			s.ndpErr = ""
			s.ndp = newNDPProber(c, s.ifi.HardwareAddr, s.r.log, s.obs)
			return
		}
		err = lerr
	}
	s.ndpErr = fmt.Sprintf("cannot send neighbour solicitations on %s: %v", s.ifi.Name, err)
}

// ndpSource picks the address solicitations are sent from: a link-local
// one if usable, else any other IPv6 address of the interface that is not
// tentative.
func (s *session) ndpSource() (netip.Addr, error) {
	addrs, err := s.h.AddrList(&netlink.Device{LinkAttrs: netlink.LinkAttrs{Index: s.ifindex}}, netlink.FAMILY_V6)
	if err != nil {
		return netip.Addr{}, err
	}
	var best netip.Addr
	for _, a := range addrs {
		if a.Flags&(unix.IFA_F_TENTATIVE|unix.IFA_F_DADFAILED) != 0 {
			continue
		}
		ip, ok := netip.AddrFromSlice(a.IP)
		if !ok || !ip.Is6() || ip.Is4In6() {
			continue
		}
		if ip.IsLinkLocalUnicast() {
			return ip, nil
		}
		if !best.IsValid() {
			best = ip
		}
	}
	if !best.IsValid() {
		return netip.Addr{}, fmt.Errorf("%w: no IPv6 address", errNoSource)
	}
	return best, nil
}

func (s *session) closeProbers() {
	if s.arp != nil {
		s.arp.close()
		s.arp = nil
	}
	if s.ndp != nil {
		s.ndp.close()
		s.ndp = nil
	}
	s.ifi = nil
}

// send probes addr and returns why it could not, or "".
func (s *session) send(addr netip.Addr) string {
	if addr.Is4() {
		s.openARP()
		if s.arp == nil {
			return s.arpErr
		}
		if err := s.arp.probe(addr); err != nil {
			return fmt.Sprintf("cannot send ARP request: %v", err)
		}
		return ""
	}
	s.openNDP()
	if s.ndp == nil {
		return s.ndpErr
	}
	if err := s.ndp.probe(addr); err != nil {
		return fmt.Sprintf("cannot send neighbour solicitation: %v", err)
	}
	return ""
}

// step runs the tracker up to now: expired probes, due probes, the changes
// they make; then sets the timer for the next step.
func (s *session) step(now time.Time) {
	r := s.r
	r.mu.Lock()
	changes := r.pending
	r.pending = nil
	changes = append(changes, r.t.expire(now)...)
	for _, addr := range r.t.due(now) {
		if cause := s.send(addr); cause != "" {
			changes = append(changes, r.t.sendFailed(addr, now, cause)...)
		} else {
			r.t.sent(addr, now)
		}
	}
	at, ok := r.t.wake()
	r.mu.Unlock()
	r.report(changes)

	if ok {
		s.timer.Reset(max(0, time.Until(at)))
	} else {
		s.timer.Stop()
	}
}

func (s *session) loop(ctx context.Context) {
	s.timer = time.NewTimer(time.Hour)
	defer s.timer.Stop()
	maint := time.NewTicker(maintenancePeriod)
	defer maint.Stop()
	for {
		s.step(time.Now())
		select {
		case <-ctx.Done():
			return
		case <-s.timer.C:
		case <-s.r.wakeC:
		case <-maint.C:
			s.maintain()
		case o := <-s.obs:
			s.r.mu.Lock()
			changes := s.r.t.reply(o.addr, o.mac, time.Now())
			s.r.mu.Unlock()
			s.r.report(changes)
		case u, ok := <-s.neighCh:
			if !ok {
				s.r.log.Warn().Msg("neighbour subscription ended; resubscribing")
				s.neighCh = nil
				s.maintain()
				continue
			}
			s.neighUpdate(u)
		case u, ok := <-s.linkCh:
			if !ok {
				s.r.log.Warn().Msg("link subscription ended; resubscribing")
				s.linkCh = nil
				s.maintain()
				continue
			}
			s.linkUpdate(u)
		}
	}
}

func (s *session) neighUpdate(u netlink.NeighUpdate) {
	addr, k, ok := s.kernelEntry(&u.Neigh)
	if !ok {
		return
	}
	s.r.mu.Lock()
	changes := s.r.t.kernelUpdate(addr, k, u.Type == unix.RTM_DELNEIGH, false, time.Now())
	s.r.mu.Unlock()
	s.r.report(changes)
}

func (s *session) linkUpdate(u netlink.LinkUpdate) {
	a := u.Link.Attrs()
	switch {
	case s.ifindex != 0 && a.Index == s.ifindex && u.Header.Type == unix.RTM_DELLINK:
		s.r.report(s.gone())
	case s.ifindex != 0 && a.Index == s.ifindex:
		s.r.report(s.applyLink(u.Link, time.Now()))
	case s.ifindex == 0 && a.Name == s.r.cfg.Interface && u.Header.Type == unix.RTM_NEWLINK:
		s.adopt(u.Link)
	}
}

// adopt takes a (re)created interface of our name.
func (s *session) adopt(link netlink.Link) {
	s.ifindex = link.Attrs().Index
	s.r.log.Info().Int("ifindex", s.ifindex).Msg("interface is back")
	s.relist()
	s.r.report(s.applyLink(link, time.Now()))
}

// maintain retries what failed: subscriptions, and the interface while it
// is gone or unusable (events may have been missed, or opening the sockets
// failed).
func (s *session) maintain() {
	resubscribed := false
	if s.linkCh == nil {
		s.stopLinks()
		if err := s.subscribeLinks(); err != nil {
			s.r.log.Warn().Err(err).Send()
		} else {
			resubscribed = true
		}
	}
	if s.neighCh == nil {
		s.stopNeighs()
		if err := s.subscribeNeighs(); err != nil {
			s.r.log.Warn().Err(err).Send()
		} else {
			s.relist()
		}
	}
	s.r.mu.Lock()
	down := s.r.t.down != ""
	s.r.mu.Unlock()
	if s.ifindex == 0 || resubscribed || down {
		// Events may have been missed: look again.
		link, err := s.h.LinkByName(s.r.cfg.Interface)
		switch {
		case err != nil && s.ifindex != 0:
			s.r.report(s.gone())
		case err != nil:
		case link.Attrs().Index != s.ifindex:
			if s.ifindex != 0 {
				s.r.report(s.gone())
			}
			s.adopt(link)
		default:
			s.r.report(s.applyLink(link, time.Now()))
		}
	}
}

func (s *session) stopLinks() {
	if s.linkDone != nil {
		close(s.linkDone)
		s.linkDone = nil
	}
	if s.linkCh != nil {
		for range s.linkCh { // the receiver closes it once its socket is closed
		}
		s.linkCh = nil
	}
}

func (s *session) stopNeighs() {
	if s.neighDone != nil {
		close(s.neighDone)
		s.neighDone = nil
	}
	if s.neighCh != nil {
		for range s.neighCh {
		}
		s.neighCh = nil
	}
}

// close releases everything and waits for every goroutine it started.
func (s *session) close() {
	s.stopping.Store(true)
	s.stopLinks()
	s.stopNeighs()
	s.r.mu.Lock()
	s.closeProbers()
	s.r.mu.Unlock()
	s.h.Close()
}

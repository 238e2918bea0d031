package vrrp

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"time"

	"github.com/rs/zerolog"
)

// Instance is one VRRP instance on the real network.
type Instance struct {
	cfg    Config
	log    zerolog.Logger
	engine atomic.Pointer[Engine]

	// For tests: replace the network. Nil means the real one.
	dial    func(Config) (Conn, error)
	actions Actions
}

// New validates cfg and returns an instance; Run starts it.
func New(cfg Config, log zerolog.Logger) (*Instance, error) {
	cfg, err := cfg.Validate()
	if err != nil {
		return nil, err
	}
	return &Instance{cfg: cfg, log: log.With().Str("component", "vrrp").Logger()}, nil
}

// Status returns a snapshot of the instance.
func (i *Instance) Status() Status {
	if e := i.engine.Load(); e != nil {
		return e.Status()
	}
	return Status{Name: i.cfg.Name, VRID: i.cfg.VRID, State: StateInit,
		Priority: i.cfg.Priority, BasePriority: i.cfg.Priority}
}

type realClock struct{}

func (realClock) Now() time.Time { return time.Now() }

type checkResult struct {
	name string
	ok   bool
}

// Run runs the instance until ctx is done: it removes VIPs left behind,
// opens the socket, watches the tracked checks and drives the engine. On
// return a master has sent its priority-0 advert and the VIPs are gone.
func (i *Instance) Run(ctx context.Context) error {
	actions := i.actions
	if actions == nil {
		actions = NewNetActions(i.cfg)
	}
	// A killed node leaves its VIPs behind; drop them before anything.
	if err := actions.RemoveVIPs(); err != nil {
		return err
	}
	dial := i.dial
	if dial == nil {
		dial = DialConn
	}
	conn, err := dial(i.cfg)
	if err != nil {
		return err
	}
	var wg sync.WaitGroup
	defer wg.Wait()
	bg, cancel := context.WithCancel(context.Background())
	defer cancel()

	var notifier Notifier
	if len(i.cfg.Notify) > 0 {
		n := NewCommandNotifier(i.cfg.Notify, i.cfg.NotifyTimeout, i.log.With().Str("instance", i.cfg.Name).Logger())
		notifier = n
		wg.Go(func() { n.Run(bg) })
	}
	e := NewEngine(i.cfg, Env{Conn: conn, Clock: realClock{}, Actions: actions, Notifier: notifier, Logger: i.log})
	i.engine.Store(e)

	checks := make(chan checkResult, 16)
	for _, t := range i.cfg.Tracks {
		name := t.Check.Name()
		wg.Go(func() {
			t.Check.Watch(bg, func(ok bool) {
				select {
				case checks <- checkResult{name, ok}:
				case <-bg.Done():
				}
			})
		})
	}

	type recv struct {
		a   *Advert
		err error
	}
	adverts := make(chan recv, 64)
	wg.Go(func() {
		for {
			a, err := conn.Recv()
			select {
			case adverts <- recv{a, err}:
			case <-bg.Done():
				return
			}
			if err != nil {
				if _, ok := CauseOf(err); !ok {
					return
				}
			}
		}
	})

	e.Start()
	timer := time.NewTimer(time.Hour)
	defer timer.Stop()
	var runErr error
loop:
	for {
		next := e.Next()
		d := time.Hour
		if !next.IsZero() {
			d = max(time.Until(next), 0)
		}
		timer.Reset(d)
		select {
		case <-ctx.Done():
			break loop
		case <-timer.C:
			e.Tick()
		case r := <-adverts:
			switch {
			case r.err == nil:
				e.Receive(r.a)
			case errors.Is(r.err, context.Canceled):
				break loop
			default:
				if _, ok := CauseOf(r.err); ok {
					e.Discard(r.err)
					continue
				}
				runErr = r.err
				break loop
			}
		case c := <-checks:
			e.SetCheck(c.name, c.ok)
		}
	}
	e.Stop()
	cancel()
	conn.Close()
	return runErr
}

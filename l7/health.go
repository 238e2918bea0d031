package l7

import (
	"context"
	"fmt"

	"github.com/rs/zerolog"

	"github.com/directorlb/director/director/health"
)

// CheckHealth checks the servers of the backends with a health.Monitor
// and applies its transitions, until ctx is cancelled. Backends without a
// CheckConfig are left alone.
func CheckHealth(ctx context.Context, log zerolog.Logger, backends ...*Backend) error {
	m, err := health.NewMonitor(health.Config{
		Logger: log,
		OnTransition: func(ev health.Event) {
			for _, b := range backends {
				if b.Observe(ev) {
					return
				}
			}
		},
	})
	if err != nil {
		return err
	}
	for _, b := range backends {
		b.SetMonitor(m)
		ts, err := b.Targets()
		if err != nil {
			return err
		}
		for _, t := range ts {
			if err := m.Add(t); err != nil {
				return fmt.Errorf("backend %s: %w", b.Name(), err)
			}
		}
	}
	return m.Run(ctx)
}

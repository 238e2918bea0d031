package neigh_test

import (
	"context"
	"net"
	"net/netip"
	"os"
	"time"

	"github.com/directorlb/director/director/neigh"
	"github.com/rs/zerolog"
)

func ExampleResolver() {
	log := zerolog.New(os.Stderr).With().Str("component", "neigh").Logger()
	r, err := neigh.New(neigh.Config{
		Interface:       "eth1",
		RefreshInterval: 2 * time.Second, // the default; bounds the time to see a moved MAC
		OnChange: func(addr netip.Addr, mac net.HardwareAddr, cause string) {
			if mac == nil {
				log.Warn().Stringer("real", addr).Str("cause", cause).Msg("real down: no MAC")
				return
			}
			log.Info().Stringer("real", addr).Stringer("mac", mac).Msg("program the real's MAC")
		},
		Logger: log,
	})
	if err != nil {
		log.Fatal().Err(err).Send()
	}
	r.Add(netip.MustParseAddr("10.0.0.11"))
	r.Add(netip.MustParseAddr("2001:db8::11"))

	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	go func() { _ = r.Run(ctx) }() // in the namespace that holds eth1

	if mac, cause, ok := r.Lookup(netip.MustParseAddr("10.0.0.11")); ok && mac == nil {
		log.Info().Str("cause", cause).Msg("not resolved yet")
	}
}

package maglev

import (
	"encoding/binary"
	"errors"
	"slices"
	"testing"
)

// decodeBackends turns fuzz input into backends, 7 bytes each: a 2-byte name
// (empty if both are zero; any bytes, not only UTF-8), a 1-byte id (0xff
// becomes the reserved Empty) and a little-endian 4-byte weight.
func decodeBackends(data []byte) []Backend {
	const rec = 7
	var bs []Backend
	for len(data) >= rec && len(bs) < 300 {
		r := data[:rec]
		data = data[rec:]
		b := Backend{ID: uint32(r[2]), Weight: binary.LittleEndian.Uint32(r[3:])}
		if r[0] != 0 || r[1] != 0 {
			b.Name = string(r[:2])
		}
		if r[2] == 0xff {
			b.ID = Empty
		}
		bs = append(bs, b)
	}
	return bs
}

func encodeBackends(bs ...Backend) []byte {
	var data []byte
	for _, b := range bs {
		name := []byte(b.Name + "\x00\x00")[:2]
		data = append(data, name...)
		data = append(data, byte(b.ID))
		data = binary.LittleEndian.AppendUint32(data, b.Weight)
	}
	return data
}

func FuzzBuild(f *testing.F) {
	f.Add(encodeBackends(Backend{1, "a", 1}, Backend{2, "b", 1}), uint32(13))
	f.Add(encodeBackends(Backend{1, "a", 1}, Backend{2, "b", 1_000_000}), uint32(65537))
	f.Add(encodeBackends(Backend{1, "a", 0}, Backend{2, "b", 0}), uint32(7))
	f.Add(encodeBackends(Backend{1, "a", 3}, Backend{1, "b", 1}), uint32(7))
	f.Add(encodeBackends(Backend{1, "a", 3}, Backend{2, "a", 1}), uint32(7))
	f.Add(encodeBackends(Backend{1, "a", 0xffffffff}, Backend{2, "b", 0xfffffffe}, Backend{3, "c", 1}), uint32(251))
	f.Add(encodeBackends(Backend{1, "a", 5}, Backend{2, "b", 5}, Backend{3, "c", 5}), uint32(3))
	f.Add(encodeBackends(Backend{1, "a", 5}), uint32(65536))

	f.Fuzz(func(t *testing.T, data []byte, size uint32) {
		size %= 1 << 17 // keep the tables small; covers primes and not
		bs := decodeBackends(data)
		table, err := Build(bs, size)

		rev := slices.Clone(bs)
		slices.Reverse(rev)
		table2, err2 := Build(rev, size)
		if (err == nil) != (err2 == nil) || (err != nil && err.Error() != err2.Error()) {
			t.Fatalf("errors differ under reversal: %v, %v", err, err2)
		}
		if err != nil {
			if table != nil {
				t.Fatalf("table with error %v", err)
			}
			for _, known := range []error{ErrSize, ErrEmptyName, ErrDuplicateName, ErrDuplicateID, ErrReservedID} {
				if errors.Is(err, known) {
					return
				}
			}
			t.Fatalf("unknown error %v", err)
		}
		if !slices.Equal(table, table2) {
			t.Fatalf("tables differ under reversal")
		}
		if len(table) != int(size) {
			t.Fatalf("table has %d entries, want %d", len(table), size)
		}

		weight := make(map[uint32]uint32)
		var total uint64
		for _, b := range bs {
			weight[b.ID] = b.Weight
			total += uint64(b.Weight)
		}
		c := counts(table)
		for id, n := range c {
			if id == Empty {
				if total > 0 {
					t.Fatalf("%d Empty entries with total weight %d", n, total)
				}
				continue
			}
			if weight[id] == 0 {
				t.Fatalf("id %d in the table with weight 0 or not a backend", id)
			}
		}
		// Every backend within one entry of its share: |n*W - M*w| < W.
		for _, b := range bs {
			got, want := uint64(c[b.ID])*total, uint64(size)*uint64(b.Weight)
			if total > 0 && max(got, want)-min(got, want) >= total {
				t.Fatalf("backend %q (weight %d): %d entries, share %d/%d", b.Name, b.Weight, c[b.ID], want, total)
			}
		}
		if size <= 1024 && len(bs) <= 64 {
			if want := reference(bs, size); !slices.Equal(table, want) {
				t.Fatalf("table differs from the reference\n got %v\nwant %v", table, want)
			}
		}
	})
}

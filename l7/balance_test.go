package l7

import (
	"strings"
	"testing"
)

func TestSWRR(t *testing.T) {
	names := "abc"
	tests := []struct {
		name    string
		weights []int
		down    string
		picks   int
		want    string
	}{
		{"equal weights rotate", []int{1, 1, 1}, "", 6, "abcabc"},
		{"smooth, not bursty", []int{5, 1, 1}, "", 7, "aabacaa"},
		{"down server skipped", []int{1, 1, 1}, "b", 4, "acac"},
		{"weights among the live", []int{2, 1, 1}, "a", 4, "bcbc"},
		{"none live", []int{1, 1, 1}, "abc", 2, "--"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rr := newSWRR(tt.weights)
			var got strings.Builder
			for range tt.picks {
				i := rr.next(func(i int) bool { return !strings.ContainsRune(tt.down, rune(names[i])) })
				if i < 0 {
					got.WriteByte('-')
				} else {
					got.WriteByte(names[i])
				}
			}
			if got.String() != tt.want {
				t.Errorf("picks %q, want %q", got.String(), tt.want)
			}
		})
	}
}

func TestSWRRShares(t *testing.T) {
	w := []int{3, 7, 1, 256}
	rr := newSWRR(w)
	total := 0
	for _, x := range w {
		total += x
	}
	count := make([]int, len(w))
	for range total * 10 {
		count[rr.next(func(int) bool { return true })]++
	}
	for i := range w {
		if count[i] != w[i]*10 {
			t.Errorf("server %d: %d picks, want %d", i, count[i], w[i]*10)
		}
	}
}

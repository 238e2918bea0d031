package main

import "testing"

func TestCompareDebVersions(t *testing.T) {
	// Each pair is ordered a > b, as dpkg --compare-versions says.
	greater := [][2]string{
		{"6.12.117-1~deb12u1", "6.12.95-1~bpo12+1"},
		{"6.1.192-2", "6.1.192-1"},
		{"1.0", "1.0~rc1"},
		{"1.0+b1", "1.0"},
		{"1:0.9", "2.0"},
		{"1.0a", "1.0"},
		{"1.0-1", "1.0"},
		{"2.10", "2.9"},
		{"1.0~", "1.0~~"},
		{"6.12.90+deb12.1", "6.12.90+deb12"},
		{"linux-image-6.1.0-56-amd64", "linux-image-6.1.0-55-amd64"},
		{"linux-image-6.1.0-100-amd64", "linux-image-6.1.0-99-amd64"},
	}
	for _, p := range greater {
		if c := compareDebVersions(p[0], p[1]); c != 1 {
			t.Errorf("compare(%q, %q) = %d, want 1", p[0], p[1], c)
		}
		if c := compareDebVersions(p[1], p[0]); c != -1 {
			t.Errorf("compare(%q, %q) = %d, want -1", p[1], p[0], c)
		}
	}
	for _, v := range []string{"6.1.192-2", "1:2.0~rc1-3+b1", "0", ""} {
		if c := compareDebVersions(v, v); c != 0 {
			t.Errorf("compare(%q, %q) = %d, want 0", v, v, c)
		}
	}
	if c := compareDebVersions("01.0", "1.0"); c != 0 {
		t.Errorf("leading zeros: got %d, want 0", c)
	}
}

package health_test

import (
	"slices"
	"strings"
	"testing"

	"github.com/directorlb/director/director/health"
)

func TestParseStatusSet(t *testing.T) {
	tests := []struct {
		in      string
		want    health.StatusSet
		str     string
		wantErr string
	}{
		{in: "200", want: health.StatusSet{{200, 200}}, str: "200"},
		{in: "200-399", want: health.StatusSet{{200, 399}}, str: "200-399"},
		{in: "200,204", want: health.StatusSet{{200, 200}, {204, 204}}, str: "200,204"},
		{in: " 200-299 , 302 ", want: health.StatusSet{{200, 299}, {302, 302}}, str: "200-299,302"},
		{in: "", wantErr: "empty status set"},
		{in: "200,", wantErr: "empty element"},
		{in: "abc", wantErr: `"abc" is not a 3-digit number`},
		{in: "2000", wantErr: `"2000" is not a 3-digit number`},
		{in: "+20", wantErr: `"+20" is not a 3-digit number`},
		{in: "099", wantErr: "out of range"},
		{in: "600", wantErr: "out of range"},
		{in: "399-200", wantErr: "backwards"},
		{in: "200-", wantErr: "not a 3-digit number"},
		{in: "200-300-400", wantErr: "not a 3-digit number"},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			got, err := health.ParseStatusSet(tt.in)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("ParseStatusSet(%q) error = %v, want one containing %q", tt.in, err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if !slices.Equal(got, tt.want) {
				t.Errorf("ParseStatusSet(%q) = %v, want %v", tt.in, got, tt.want)
			}
			if got.String() != tt.str {
				t.Errorf("String() = %q, want %q", got.String(), tt.str)
			}
		})
	}
}

func TestStatusSetContains(t *testing.T) {
	set := health.StatusSet{{200, 299}, {302, 302}}
	for code, want := range map[int]bool{199: false, 200: true, 250: true, 299: true, 300: false, 302: true, 503: false} {
		if got := set.Contains(code); got != want {
			t.Errorf("%v.Contains(%d) = %v, want %v", set, code, got, want)
		}
	}
	if health.DefaultExpect.Contains(404) || !health.DefaultExpect.Contains(301) {
		t.Errorf("DefaultExpect %v should hold 2xx and 3xx only", health.DefaultExpect)
	}
}

func FuzzParseStatusSet(f *testing.F) {
	for _, s := range []string{"200", "200-399", "200,204", " 100 - 599 ", "", "-", ",,"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		set, err := health.ParseStatusSet(s)
		if err != nil {
			return
		}
		if len(set) == 0 {
			t.Fatalf("ParseStatusSet(%q) returned an empty set without error", s)
		}
		for _, r := range set {
			if r.Lo < 100 || r.Hi > 599 || r.Lo > r.Hi {
				t.Fatalf("ParseStatusSet(%q) = %v: bad range %v", s, set, r)
			}
		}
		again, err := health.ParseStatusSet(set.String())
		if err != nil || !slices.Equal(again, set) {
			t.Fatalf("round trip of %q via %q = %v, %v", s, set.String(), again, err)
		}
	})
}

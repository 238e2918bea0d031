package health

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
)

// StatusRange is an inclusive range of HTTP status codes.
type StatusRange struct{ Lo, Hi int }

// StatusSet is a set of expected HTTP status codes, e.g. "200-399" or
// "200,204". The zero value matches nothing; HTTPConfig treats an empty set
// as DefaultExpect.
type StatusSet []StatusRange

// DefaultExpect is what HAProxy's "option httpchk" accepts without an
// "http-check expect": any 2xx or 3xx.
var DefaultExpect = StatusSet{{200, 399}}

// ParseStatusSet parses a comma-separated list of codes and inclusive
// ranges: "200", "200-399", "200,204", "200-299, 302".
func ParseStatusSet(s string) (StatusSet, error) {
	if strings.TrimSpace(s) == "" {
		return nil, errors.New("health: empty status set")
	}
	var set StatusSet
	for elem := range strings.SplitSeq(s, ",") {
		elem = strings.TrimSpace(elem)
		if elem == "" {
			return nil, fmt.Errorf("health: status set %q: empty element", s)
		}
		lo, hi, isRange := strings.Cut(elem, "-")
		l, err := parseStatusCode(lo)
		if err != nil {
			return nil, fmt.Errorf("health: status set %q: %w", s, err)
		}
		h := l
		if isRange {
			if h, err = parseStatusCode(hi); err != nil {
				return nil, fmt.Errorf("health: status set %q: %w", s, err)
			}
			if h < l {
				return nil, fmt.Errorf("health: status set %q: range %q is backwards", s, elem)
			}
		}
		set = append(set, StatusRange{Lo: l, Hi: h})
	}
	return set, nil
}

func parseStatusCode(s string) (int, error) {
	s = strings.TrimSpace(s)
	if len(s) != 3 || strings.Trim(s, "0123456789") != "" {
		return 0, fmt.Errorf("status code %q is not a 3-digit number", s)
	}
	n, _ := strconv.Atoi(s)
	if n < 100 || n > 599 {
		return 0, fmt.Errorf("status code %d out of range 100-599", n)
	}
	return n, nil
}

// Contains reports whether code is in the set.
func (s StatusSet) Contains(code int) bool {
	for _, r := range s {
		if code >= r.Lo && code <= r.Hi {
			return true
		}
	}
	return false
}

// String renders the set in the syntax ParseStatusSet accepts.
func (s StatusSet) String() string {
	var b strings.Builder
	for i, r := range s {
		if i > 0 {
			b.WriteByte(',')
		}
		b.WriteString(strconv.Itoa(r.Lo))
		if r.Hi != r.Lo {
			b.WriteByte('-')
			b.WriteString(strconv.Itoa(r.Hi))
		}
	}
	return b.String()
}

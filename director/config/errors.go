package config

import (
	"cmp"
	"errors"
	"fmt"
	"slices"
	"strconv"
)

// Error is one problem found in a configuration file. Its text is
// "file:line: key: message", e.g.
//
//	director.yaml:14: vips[1].reals[2].address: "10.99.0.300" is not an IP address
//
// List indexes in Key count from 0. Key is empty for problems of the file as
// a whole (YAML syntax, an empty file).
type Error struct {
	File string
	Line int
	Key  string
	Msg  string
}

func (e *Error) Error() string {
	if e.Key == "" {
		return e.File + ":" + strconv.Itoa(e.Line) + ": " + e.Msg
	}
	return e.File + ":" + strconv.Itoa(e.Line) + ": " + e.Key + ": " + e.Msg
}

// Errors returns every *Error in err, in the order they were found: Load and
// Parse join all the problems of a file into one error.
func Errors(err error) []*Error {
	var out []*Error
	var walk func(error)
	walk = func(err error) {
		if err == nil {
			return
		}
		if e, ok := err.(*Error); ok {
			out = append(out, e)
			return
		}
		if j, ok := err.(interface{ Unwrap() []error }); ok {
			for _, e := range j.Unwrap() {
				walk(e)
			}
			return
		}
		walk(errors.Unwrap(err))
	}
	walk(err)
	return out
}

// pos is where a value is in the file: its line and key path.
type pos struct {
	line int
	path string
}

func (p pos) key(name string) pos {
	if p.path == "" {
		return pos{p.line, name}
	}
	return pos{p.line, p.path + "." + name}
}

func (p pos) index(i int) pos {
	return pos{p.line, p.path + "[" + strconv.Itoa(i) + "]"}
}

// maxErrors bounds how many problems one file reports.
const maxErrors = 100

// report collects the errors of one file.
type report struct {
	file string
	errs []*Error
}

// full reports whether no more errors will be recorded.
func (r *report) full() bool { return len(r.errs) >= maxErrors }

func (r *report) errorf(p pos, format string, args ...any) {
	switch {
	case len(r.errs) < maxErrors:
		r.errs = append(r.errs, &Error{File: r.file, Line: p.line, Key: p.path, Msg: fmt.Sprintf(format, args...)})
	case len(r.errs) == maxErrors:
		r.errs = append(r.errs, &Error{File: r.file, Line: p.line, Msg: "too many errors, giving up"})
	}
}

// err joins the errors, sorted by line.
func (r *report) err() error {
	slices.SortStableFunc(r.errs, func(a, b *Error) int { return cmp.Compare(a.Line, b.Line) })
	errs := make([]error, len(r.errs))
	for i, e := range r.errs {
		errs[i] = e
	}
	return errors.Join(errs...)
}

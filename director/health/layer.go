package health

// Layer is what a check looks at. HAProxy names a check's results after
// it: L4OK for a connection, L7OK for an HTTP answer, PROCOK for a command.
type Layer uint8

// Layers of the checkers of this package.
const (
	Layer4       Layer = iota // a TCP connection (TCPChecker)
	Layer7                    // an HTTP exchange (HTTPChecker)
	LayerCommand              // an external command (CommandChecker)
)

// layered is a Checker that says its layer; one that does not is taken as
// a layer 4 check.
type layered interface{ Layer() Layer }

// Layer is Layer4.
func (*TCPChecker) Layer() Layer { return Layer4 }

// Layer is Layer7.
func (*HTTPChecker) Layer() Layer { return Layer7 }

// Layer is LayerCommand.
func (*CommandChecker) Layer() Layer { return LayerCommand }

func layerOf(c Checker) Layer {
	if l, ok := c.(layered); ok {
		return l.Layer()
	}
	return Layer4
}

// CheckStatus is HAProxy's check_status of a result of a check at layer
// l (L4OK, L7STS, L4CON, PROCERR, ...), with its check_code: the HTTP
// status of an HTTP check, the exit code of a command, zero otherwise.
// An HTTP check that could not connect failed at layer 4, as HAProxy
// reports it.
func (l Layer) CheckStatus(c Cause) (string, int) {
	code := 0
	if l != Layer4 {
		code = c.Code
	}
	switch c.Kind {
	case CauseOK:
		switch l {
		case Layer7:
			return "L7OK", code
		case LayerCommand:
			return "PROCOK", code
		}
		return "L4OK", code
	case CauseTimeout:
		if l == Layer7 && c.Detail != DetailConnecting {
			return "L7TOUT", code
		}
		return "L4TOUT", code
	case CauseRefused, CauseReset, CauseUnreachable:
		return "L4CON", code
	case CauseTLS:
		return "L6RSP", code
	case CauseStatus:
		return "L7STS", code
	case CauseClosed, CauseProtocol, CauseBody:
		return "L7RSP", code
	case CauseExit, CauseSignal:
		return "PROCERR", code
	case CauseCommandTimeout:
		return "PROCTOUT", code
	}
	return "UNK", code
}

// CheckStatus is HAProxy's check_status and check_code of the target's
// latest check (Layer.CheckStatus), or INI before the first one.
func (s Status) CheckStatus() (string, int) {
	if s.Checks == 0 {
		return "INI", 0
	}
	return s.Layer.CheckStatus(s.Last.Cause)
}

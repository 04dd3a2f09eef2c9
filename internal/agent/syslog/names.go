package syslog

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"strings"
)

// facilityNames are the facility keywords of Azure's Syslog table and DCR
// facilityNames, by code (RFC 5424 §6.2.1; 12–15 as Linux names them).
var facilityNames = [24]string{
	"kern", "user", "mail", "daemon", "auth", "syslog", "lpr", "news",
	"uucp", "cron", "authpriv", "ftp", "ntp", "audit", "alert", "clock",
	"local0", "local1", "local2", "local3", "local4", "local5", "local6", "local7",
}

// severityNames are the SeverityLevel values of Azure's Syslog table.
var severityNames = [8]string{"emerg", "alert", "crit", "err", "warning", "notice", "info", "debug"}

// dcrLevels are the logLevels keywords of a data collection rule, by severity.
var dcrLevels = [8]string{"Emergency", "Alert", "Critical", "Error", "Warning", "Notice", "Info", "Debug"}

// FacilityName returns the keyword for a facility code ("" if out of range).
func FacilityName(f int) string {
	if f < 0 || f >= len(facilityNames) {
		return ""
	}
	return facilityNames[f]
}

// SeverityName returns the Syslog table's SeverityLevel for a severity code.
func SeverityName(s int) string {
	if s < 0 || s >= len(severityNames) {
		return ""
	}
	return severityNames[s]
}

// Filter selects messages by facility and severity, as a DCR syslog data
// source's facilityNames and logLevels do. The zero Filter matches nothing.
type Filter struct {
	facilities [24]bool
	severities [8]bool
}

// NewFilter builds a filter from DCR facilityNames and logLevels (case
// insensitive; "*" means all). "mark" and "nopri" name no code and are
// accepted and ignored. Unknown names are errors.
func NewFilter(facilities, levels []string) (Filter, error) {
	var f Filter
	for _, name := range facilities {
		if name == "*" {
			for i := range f.facilities {
				f.facilities[i] = true
			}
			continue
		}
		found := false
		for i, n := range facilityNames {
			if strings.EqualFold(n, name) {
				f.facilities[i], found = true, true
			}
		}
		if !found && !strings.EqualFold(name, "mark") && !strings.EqualFold(name, "nopri") {
			return Filter{}, fmt.Errorf("unknown syslog facility %q", name)
		}
	}
	for _, name := range levels {
		if name == "*" {
			for i := range f.severities {
				f.severities[i] = true
			}
			continue
		}
		found := false
		for i, n := range dcrLevels {
			if strings.EqualFold(n, name) || strings.EqualFold(severityNames[i], name) {
				f.severities[i], found = true, true
			}
		}
		if !found {
			return Filter{}, fmt.Errorf("unknown syslog level %q", name)
		}
	}
	return f, nil
}

// Match reports whether a message with this facility and severity passes.
func (f *Filter) Match(facility, severity int) bool {
	return facility >= 0 && facility < 24 && severity >= 0 && severity < 8 &&
		f.facilities[facility] && f.severities[severity]
}

// ErrFrameTooLarge is returned by a Framer for an octet count over the limit.
var ErrFrameTooLarge = errors.New("syslog: frame too large")

// Framer splits a TCP syslog stream into messages: RFC 6587 octet counting
// ("LEN SP MSG") when a frame starts with a digit, else LF-terminated
// (non-transparent framing). Not safe for concurrent use.
type Framer struct {
	r   *bufio.Reader
	max int
	buf []byte
}

// NewFramer reads frames of at most max bytes (0 → MaxMessageBytes) from r.
func NewFramer(r io.Reader, max int) *Framer {
	if max <= 0 {
		max = MaxMessageBytes
	}
	return &Framer{r: bufio.NewReaderSize(r, 64<<10), max: max}
}

// Next returns the next message; the slice is valid until the next call.
// An over-long LF-terminated line is cut at max and the rest discarded; an
// over-long octet count is ErrFrameTooLarge (the stream cannot be resynced).
func (f *Framer) Next() ([]byte, error) {
	for {
		c, err := f.r.ReadByte()
		if err != nil {
			return nil, err
		}
		if c == '\n' || c == '\r' || c == 0 {
			continue // empty lines, stray CR/NUL between frames
		}
		if c >= '1' && c <= '9' {
			n := int(c - '0')
			for {
				d, err := f.r.ReadByte()
				if err != nil {
					return nil, err
				}
				if d == ' ' {
					break
				}
				if d < '0' || d > '9' {
					return nil, errors.New("syslog: bad octet count")
				}
				if n > f.max {
					return nil, ErrFrameTooLarge
				}
				n = n*10 + int(d-'0')
			}
			if n > f.max {
				return nil, ErrFrameTooLarge
			}
			if cap(f.buf) < n {
				f.buf = make([]byte, n)
			}
			f.buf = f.buf[:n]
			if _, err := io.ReadFull(f.r, f.buf); err != nil {
				return nil, err
			}
			return f.buf, nil
		}
		f.buf = append(f.buf[:0], c)
		for {
			line, err := f.r.ReadSlice('\n')
			room := f.max - len(f.buf)
			if room > 0 {
				f.buf = append(f.buf, line[:min(len(line), room)]...)
			}
			if err == bufio.ErrBufferFull {
				continue
			}
			if err != nil && len(f.buf) == 0 {
				return nil, err
			}
			return bytes.TrimRight(f.buf, "\r\n"), nil
		}
	}
}

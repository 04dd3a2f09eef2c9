package syslog

import (
	"bytes"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"
)

// Format tells which syslog format a message was parsed as.
type Format int

// Formats.
const (
	RFC3164 Format = 3164
	RFC5424 Format = 5424
)

// Limits on what a message may carry.
const (
	// MaxMessageBytes bounds a whole message; longer input is cut.
	MaxMessageBytes = 64 << 10
	maxHostname     = 255
	maxAppName      = 48
	maxProcID       = 128
	maxMsgID        = 32
	maxTag3164      = 48
)

// Message is one parsed syslog message. Time is the zero time when the
// message carried none (or the RFC 5424 NILVALUE).
type Message struct {
	Format         Format
	Facility       int // 0..23
	Severity       int // 0..7
	Time           time.Time
	Hostname       string
	AppName        string // RFC 5424 APP-NAME or the RFC 3164 TAG
	ProcID         string
	MsgID          string
	StructuredData string // raw RFC 5424 STRUCTURED-DATA, "" for NILVALUE
	Text           string // MSG
}

// ErrEmpty is returned for an empty message.
var ErrEmpty = errors.New("syslog: empty message")

// Parse parses one message. now and loc complete RFC 3164 timestamps, which
// carry neither year nor zone. Invalid UTF-8 is replaced, control characters
// other than tab are kept as they are (the JSON encoder escapes them).
func Parse(b []byte, now time.Time, loc *time.Location) (Message, error) {
	if len(b) > MaxMessageBytes {
		b = b[:MaxMessageBytes]
	}
	b = bytes.TrimRight(b, "\r\n\x00")
	if len(b) == 0 {
		return Message{}, ErrEmpty
	}
	if loc == nil {
		loc = time.Local
	}
	pri, rest, ok := parsePRI(b)
	if !ok {
		// RFC 3164 §4.3.3: no PRI → user.notice, and the whole packet is the content.
		m := Message{Format: RFC3164, Facility: 1, Severity: 5}
		parse3164Body(&m, b, now, loc)
		return m, nil
	}
	m := Message{Facility: pri >> 3, Severity: pri & 7}
	if len(rest) >= 2 && rest[0] == '1' && rest[1] == ' ' {
		if err := parse5424(&m, rest[2:]); err == nil {
			m.Format = RFC5424
			return m, nil
		}
		m = Message{Facility: pri >> 3, Severity: pri & 7}
	}
	m.Format = RFC3164
	parse3164Body(&m, rest, now, loc)
	return m, nil
}

// parsePRI reads "<N>" with N in 0..191 written with at most three digits.
func parsePRI(b []byte) (int, []byte, bool) {
	if len(b) < 3 || b[0] != '<' {
		return 0, b, false
	}
	n, i := 0, 1
	for ; i < len(b) && i <= 4 && b[i] >= '0' && b[i] <= '9'; i++ {
		n = n*10 + int(b[i]-'0')
	}
	if i == 1 || i > 4 || i >= len(b) || b[i] != '>' || n > 191 || (i > 2 && b[1] == '0') {
		return 0, b, false
	}
	return n, b[i+1:], true
}

// field cuts the next space-terminated token.
func field(b []byte) (tok, rest []byte, ok bool) {
	i := bytes.IndexByte(b, ' ')
	if i < 0 {
		return b, nil, len(b) > 0
	}
	return b[:i], b[i+1:], i > 0
}

func printASCII(b []byte, max int) bool {
	if len(b) == 0 || len(b) > max {
		return false
	}
	for _, c := range b {
		if c < 33 || c > 126 {
			return false
		}
	}
	return true
}

func nilable(b []byte) string {
	if len(b) == 1 && b[0] == '-' {
		return ""
	}
	return string(b)
}

func parse5424(m *Message, b []byte) error {
	ts, b, ok := field(b)
	if !ok {
		return errors.New("missing timestamp")
	}
	if !(len(ts) == 1 && ts[0] == '-') {
		t, err := parseRFC3339(ts)
		if err != nil {
			return err
		}
		m.Time = t
	}
	var host, app, proc, msgid []byte
	if host, b, ok = field(b); !ok || !printASCII(host, maxHostname) {
		return errors.New("bad hostname")
	}
	if app, b, ok = field(b); !ok || !printASCII(app, maxAppName) {
		return errors.New("bad app-name")
	}
	if proc, b, ok = field(b); !ok || !printASCII(proc, maxProcID) {
		return errors.New("bad procid")
	}
	if msgid, b, ok = field(b); !ok || !printASCII(msgid, maxMsgID) {
		return errors.New("bad msgid")
	}
	m.Hostname, m.AppName, m.ProcID, m.MsgID = nilable(host), nilable(app), nilable(proc), nilable(msgid)
	if len(b) == 0 {
		return errors.New("missing structured data")
	}
	if b[0] == '-' {
		b = b[1:]
	} else {
		n, err := structuredDataLen(b)
		if err != nil {
			return err
		}
		m.StructuredData = validUTF8(b[:n])
		b = b[n:]
	}
	if len(b) > 0 {
		if b[0] != ' ' {
			return errors.New("no space after structured data")
		}
		b = b[1:]
		b = bytes.TrimPrefix(b, []byte("\xef\xbb\xbf")) // BOM
		// rsyslog's RSYSLOG_SyslogProtocol23Format writes its msg property,
		// which keeps the space that followed the tag: "- -  text".
		b = bytes.TrimLeft(b, " ")
	}
	m.Text = validUTF8(b)
	return nil
}

// structuredDataLen returns the length of one or more SD-ELEMENTs at the
// start of b: "[" SD-ID *(SP PARAM-NAME="PARAM-VALUE") "]".
func structuredDataLen(b []byte) (int, error) {
	i := 0
	for i < len(b) && b[i] == '[' {
		i++
		inValue := false
		closed := false
		for i < len(b) {
			c := b[i]
			switch {
			case inValue && c == '\\' && i+1 < len(b):
				i += 2
				continue
			case c == '"':
				inValue = !inValue
			case !inValue && c == ']':
				closed = true
			}
			i++
			if closed {
				break
			}
		}
		if !closed {
			return 0, errors.New("unterminated structured data")
		}
	}
	if i == 0 {
		return 0, errors.New("bad structured data")
	}
	return i, nil
}

// parseRFC3339 parses an RFC 5424 TIMESTAMP (RFC 3339, at most 6 fraction digits,
// though more are accepted).
func parseRFC3339(b []byte) (time.Time, error) {
	if len(b) < len("2006-01-02T15:04:05Z") || len(b) > 40 {
		return time.Time{}, errors.New("bad timestamp")
	}
	t, err := time.Parse(time.RFC3339Nano, string(b))
	if err != nil {
		return time.Time{}, fmt.Errorf("bad timestamp: %w", err)
	}
	return t, nil
}

var months = [...]string{"Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"}

// parse3164Time reads "Mmm dd hh:mm:ss" (dd may be space-padded) and
// completes it with the year that puts it closest before now (allowing one
// day of clock skew into the future).
func parse3164Time(b []byte, now time.Time, loc *time.Location) (time.Time, []byte, bool) {
	if len(b) < 15 || b[3] != ' ' || b[6] != ' ' || b[9] != ':' || b[12] != ':' {
		return time.Time{}, b, false
	}
	mon := -1
	for i, name := range months {
		if string(b[:3]) == name {
			mon = i + 1
		}
	}
	if mon < 0 {
		return time.Time{}, b, false
	}
	num := func(s []byte) (int, bool) {
		n := 0
		for _, c := range s {
			switch {
			case c == ' ':
			case c >= '0' && c <= '9':
				n = n*10 + int(c-'0')
			default:
				return 0, false
			}
		}
		return n, true
	}
	day, ok1 := num(b[4:6])
	hh, ok2 := num(b[7:9])
	mm, ok3 := num(b[10:12])
	ss, ok4 := num(b[13:15])
	if !ok1 || !ok2 || !ok3 || !ok4 || day < 1 || day > 31 || hh > 23 || mm > 59 || ss > 60 {
		return time.Time{}, b, false
	}
	nowLoc := now.In(loc)
	t := time.Date(nowLoc.Year(), time.Month(mon), day, hh, mm, ss, 0, loc)
	if t.After(now.Add(24 * time.Hour)) {
		t = t.AddDate(-1, 0, 0)
	}
	rest := b[15:]
	if len(rest) > 0 && rest[0] == ' ' {
		rest = rest[1:]
	}
	return t, rest, true
}

// parse3164Body parses "TIMESTAMP HOSTNAME TAG[PID]: MSG" leniently: a
// missing timestamp or hostname leaves the field empty, and whatever cannot
// be parsed becomes the text. An RFC 3339 timestamp (rsyslog's
// RSYSLOG_ForwardFormat) is accepted in place of the BSD one.
func parse3164Body(m *Message, b []byte, now time.Time, loc *time.Location) {
	if t, rest, ok := parse3164Time(b, now, loc); ok {
		m.Time, b = t, rest
	} else if len(b) > 10 && b[4] == '-' && b[7] == '-' && b[10] == 'T' {
		if tok, rest, ok := field(b); ok {
			if t, err := parseRFC3339(tok); err == nil {
				m.Time, b = t, rest
			}
		}
	}
	// HOSTNAME, unless the next token is already the tag ("sshd[12]:" / "cron:").
	if tok, rest, ok := field(b); ok && len(rest) > 0 && printASCII(tok, maxHostname) &&
		tok[len(tok)-1] != ':' && bytes.IndexByte(tok, '[') < 0 && !m.Time.IsZero() {
		m.Hostname, b = string(tok), rest
	}
	// TAG: alphanumerics and a few punctuation marks, then "[pid]" and/or ":".
	i := 0
	for i < len(b) && i < maxTag3164 && b[i] > ' ' && b[i] != '[' && b[i] != ':' && b[i] < 127 {
		i++
	}
	if i > 0 && i < len(b) && (b[i] == '[' || b[i] == ':') {
		tag := b[:i]
		rest := b[i:]
		pid := []byte(nil)
		if rest[0] == '[' {
			if j := bytes.IndexByte(rest, ']'); j > 0 && j <= maxProcID+1 {
				pid, rest = rest[1:j], rest[j+1:]
			} else {
				rest = nil
			}
		}
		if rest != nil && (len(rest) == 0 || rest[0] == ':') {
			m.AppName, m.ProcID = string(tag), validUTF8(pid)
			rest = bytes.TrimPrefix(rest, []byte(":"))
			b = bytes.TrimPrefix(rest, []byte(" "))
		}
	}
	m.Text = validUTF8(b)
}

func validUTF8(b []byte) string {
	if utf8.Valid(b) {
		return string(b)
	}
	return strings.ToValidUTF8(string(b), "\uFFFD")
}

// Format5424 renders m as an RFC 5424 message (the inverse of Parse for
// RFC 5424 input); empty fields become the NILVALUE.
func Format5424(m Message) []byte {
	nv := func(s string) string {
		if s == "" {
			return "-"
		}
		return s
	}
	ts := "-"
	if !m.Time.IsZero() {
		ts = m.Time.Format("2006-01-02T15:04:05.000000Z07:00")
	}
	var b []byte
	b = fmt.Appendf(b, "<%d>1 %s %s %s %s %s %s", m.Facility<<3|m.Severity, ts, nv(m.Hostname), nv(m.AppName), nv(m.ProcID), nv(m.MsgID), nv(m.StructuredData))
	if m.Text != "" {
		b = append(b, ' ')
		b = append(b, m.Text...)
	}
	return b
}

// ProcessID returns ProcID as a number when it is one.
func (m Message) ProcessID() (int, bool) {
	if m.ProcID == "" || len(m.ProcID) > 10 {
		return 0, false
	}
	n, err := strconv.Atoi(m.ProcID)
	if err != nil || n < 0 || n > 1<<31-1 {
		return 0, false
	}
	return n, true
}

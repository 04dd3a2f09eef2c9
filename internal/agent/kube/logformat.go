package kube

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"custos/internal/agent/tail"
)

// DefaultMaxLogBytes is the largest reassembled log message; longer messages
// are truncated. Azure documents 64 KB for ContainerLogV2 lines.
const DefaultMaxLogBytes = 64 << 10

// Errors returned by the line parsers.
var (
	// ErrBadLine is returned (wrapped) for a line that is not in the expected
	// container log format.
	ErrBadLine = errors.New("malformed container log line")
)

// Format is the on-disk format of a container log file.
type Format int

// Formats.
const (
	// FormatCRI is the CRI logging format written by containerd and CRI-O:
	// "<RFC3339Nano time> <stdout|stderr> <P|F> <message>".
	FormatCRI Format = iota + 1
	// FormatDocker is Docker's json-file format:
	// {"log":"...\n","stream":"stdout","time":"..."}.
	FormatDocker
)

func (f Format) String() string {
	switch f {
	case FormatCRI:
		return "cri"
	case FormatDocker:
		return "docker"
	}
	return fmt.Sprintf("Format(%d)", int(f))
}

// Line is one physical line of a container log file. Partial lines are
// pieces of a longer message that the runtime split (CRI "P" tag; Docker
// json-file entries without a trailing newline).
type Line struct {
	Time    time.Time
	Stream  string // "stdout" or "stderr"
	Partial bool
	Message []byte // without the trailing newline; aliases the input for CRI
}

// DetectFormat guesses the format of a line: JSON objects are Docker, the rest CRI.
func DetectFormat(line []byte) Format {
	line = bytes.TrimLeft(line, " \t")
	if len(line) > 0 && line[0] == '{' {
		return FormatDocker
	}
	return FormatCRI
}

// ParseLine parses one line in format f.
func ParseLine(f Format, line []byte) (Line, error) {
	switch f {
	case FormatCRI:
		return ParseCRI(line)
	case FormatDocker:
		return ParseDocker(line)
	}
	return Line{}, fmt.Errorf("parse line: unknown format %d", int(f))
}

// ParseCRI parses a CRI log line. The trailing newline, if any, is removed.
// The returned Message aliases line.
func ParseCRI(line []byte) (Line, error) {
	line = bytes.TrimSuffix(line, []byte{'\n'})
	line = bytes.TrimSuffix(line, []byte{'\r'})
	var l Line
	sp := bytes.IndexByte(line, ' ')
	if sp <= 0 || sp > 64 {
		return l, fmt.Errorf("cri: no timestamp: %w", ErrBadLine)
	}
	t, err := time.Parse(time.RFC3339Nano, string(line[:sp]))
	if err != nil {
		return l, fmt.Errorf("cri: timestamp %q: %w", clip(line[:sp]), ErrBadLine)
	}
	l.Time = t.UTC()
	rest := line[sp+1:]
	switch {
	case bytes.HasPrefix(rest, []byte("stdout ")):
		l.Stream, rest = "stdout", rest[len("stdout "):]
	case bytes.HasPrefix(rest, []byte("stderr ")):
		l.Stream, rest = "stderr", rest[len("stderr "):]
	default:
		return l, fmt.Errorf("cri: stream is not stdout or stderr: %w", ErrBadLine)
	}
	// The tag field is a ':'-separated list whose first element is P or F.
	sp = bytes.IndexByte(rest, ' ')
	tag := rest
	if sp >= 0 {
		tag, rest = rest[:sp], rest[sp+1:]
	} else {
		rest = nil // an empty final line has no trailing space
	}
	if i := bytes.IndexByte(tag, ':'); i >= 0 {
		tag = tag[:i]
	}
	switch string(tag) {
	case "P":
		l.Partial = true
	case "F":
	default:
		return l, fmt.Errorf("cri: tag %q is not P or F: %w", clip(tag), ErrBadLine)
	}
	l.Message = rest
	return l, nil
}

type dockerLine struct {
	Log    *string `json:"log"`
	Stream string  `json:"stream"`
	Time   string  `json:"time"`
}

// ParseDocker parses one Docker json-file line. Docker splits long lines at
// 16 KB; the pieces before the last have no trailing "\n" and are Partial.
func ParseDocker(line []byte) (Line, error) {
	var l Line
	var d dockerLine
	if err := json.Unmarshal(line, &d); err != nil {
		return l, fmt.Errorf("docker: %v: %w", err, ErrBadLine)
	}
	if d.Log == nil {
		return l, fmt.Errorf("docker: no log field: %w", ErrBadLine)
	}
	switch d.Stream {
	case "stdout", "stderr":
		l.Stream = d.Stream
	default:
		return l, fmt.Errorf("docker: stream %q is not stdout or stderr: %w", clip([]byte(d.Stream)), ErrBadLine)
	}
	t, err := time.Parse(time.RFC3339Nano, d.Time)
	if err != nil {
		return l, fmt.Errorf("docker: time %q: %w", clip([]byte(d.Time)), ErrBadLine)
	}
	l.Time = t.UTC()
	msg := *d.Log
	if len(msg) > 0 && msg[len(msg)-1] == '\n' {
		msg = msg[:len(msg)-1]
		if len(msg) > 0 && msg[len(msg)-1] == '\r' {
			msg = msg[:len(msg)-1]
		}
	} else {
		l.Partial = true
	}
	l.Message = []byte(msg)
	return l, nil
}

func clip(b []byte) string {
	if len(b) > 40 {
		return string(b[:40]) + "…"
	}
	return string(b)
}

// Entry is one complete log message, reassembled from its partial lines.
type Entry struct {
	Time      time.Time // time of the first piece
	Stream    string
	Message   string
	Truncated bool     // the message was longer than the limit and was cut
	at        tail.Pos // where its first piece starts, when known
}

// Assembler joins partial lines into entries, separately per stream. Not
// safe for concurrent use; use one per log file.
type Assembler struct {
	max     int
	pending [2]pending // stdout, stderr
}

type pending struct {
	active    bool
	time      time.Time
	buf       []byte
	truncated bool
}

// NewAssembler returns an Assembler that cuts messages at maxBytes
// (0 → DefaultMaxLogBytes).
func NewAssembler(maxBytes int) *Assembler {
	if maxBytes <= 0 {
		maxBytes = DefaultMaxLogBytes
	}
	return &Assembler{max: maxBytes}
}

func streamIndex(s string) int {
	if s == "stderr" {
		return 1
	}
	return 0
}

// Add adds a line; it returns a complete entry when l ends one.
func (a *Assembler) Add(l Line) (Entry, bool) {
	p := &a.pending[streamIndex(l.Stream)]
	if !p.active {
		p.active, p.time, p.buf, p.truncated = true, l.Time, p.buf[:0], false
	}
	if room := a.max - len(p.buf); len(l.Message) > room {
		p.buf = append(p.buf, l.Message[:room]...)
		p.truncated = true
	} else {
		p.buf = append(p.buf, l.Message...)
	}
	if l.Partial {
		return Entry{}, false
	}
	e := Entry{Time: p.time, Stream: l.Stream, Message: string(p.buf), Truncated: p.truncated}
	p.active = false
	return e, true
}

// Flush returns the pending partial entries (for example when the file went
// away or stayed quiet) and resets the Assembler.
func (a *Assembler) Flush() []Entry {
	var out []Entry
	for i := range a.pending {
		p := &a.pending[i]
		if p.active {
			out = append(out, Entry{Time: p.time, Stream: [2]string{"stdout", "stderr"}[i], Message: string(p.buf), Truncated: p.truncated})
			p.active = false
		}
	}
	return out
}

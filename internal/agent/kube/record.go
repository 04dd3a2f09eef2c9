package kube

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"time"

	"custos/internal/agent/tail"
)

// ContainerLogV2 is one row of Azure's ContainerLogV2 table, with Azure's
// column names. LogMessage is dynamic: the JSON object itself when the line
// is a JSON object, otherwise a JSON string.
type ContainerLogV2 struct {
	TimeGenerated      time.Time       `json:"TimeGenerated"`
	Computer           string          `json:"Computer"`
	ContainerID        string          `json:"ContainerId"`
	ContainerName      string          `json:"ContainerName"`
	PodName            string          `json:"PodName"`
	PodNamespace       string          `json:"PodNamespace"`
	LogMessage         json.RawMessage `json:"LogMessage"`
	LogSource          string          `json:"LogSource"`
	LogLevel           string          `json:"LogLevel"`
	KubernetesMetadata json.RawMessage `json:"KubernetesMetadata,omitempty"` // a JSON object, or nil
	SourceSystem       string          `json:"SourceSystem"`
	ResourceID         string          `json:"_ResourceId,omitempty"`
}

// Log levels as ContainerLogV2 spells them.
const (
	LevelCritical = "CRITICAL"
	LevelError    = "ERROR"
	LevelWarning  = "WARNING"
	LevelInfo     = "INFO"
	LevelDebug    = "DEBUG"
	LevelTrace    = "TRACE"
	LevelUnknown  = "UNKNOWN"
)

// FilterMode is the DCR dataCollectionSettings.namespaceFilteringMode.
type FilterMode string

// Namespace filtering modes.
const (
	FilterOff     FilterMode = "Off"
	FilterInclude FilterMode = "Include"
	FilterExclude FilterMode = "Exclude"
)

// NamespaceFilter is the DCR's namespaceFilteringMode plus namespaces. The
// zero value collects every namespace.
type NamespaceFilter struct {
	Mode       FilterMode
	Namespaces []string
}

// Validate checks the mode.
func (f NamespaceFilter) Validate() error {
	switch f.Mode {
	case "", FilterOff, FilterInclude, FilterExclude:
		return nil
	}
	return fmt.Errorf("namespaceFilteringMode %q: want Off, Include or Exclude", f.Mode)
}

// Allows reports whether logs of namespace ns are collected.
func (f NamespaceFilter) Allows(ns string) bool {
	switch f.Mode {
	case FilterInclude:
		return slices.Contains(f.Namespaces, ns)
	case FilterExclude:
		return !slices.Contains(f.Namespaces, ns)
	}
	return true
}

// ExcludeAnnotation is the pod annotation that opts a pod's logs out when
// LogOptions.FilterUsingAnnotations is on (Azure's
// [log_collection_settings.filter_using_annotations]).
const ExcludeAnnotation = "fluentbit.io/exclude"

// PodMetadata is what a MetadataLookup knows about a pod.
type PodMetadata struct {
	UID string
	// ControllerKind and ControllerName name the pod's controlling owner.
	ControllerKind, ControllerName string
	Labels                         map[string]string
	Annotations                    map[string]string
	// Images maps container name to image reference; ContainerIDs maps it
	// to the runtime's container ID (without the "containerd://" scheme).
	Images       map[string]string
	ContainerIDs map[string]string
}

// MetadataLookup finds pod metadata, typically from an API-server watch.
// Implementations must be safe for concurrent use.
type MetadataLookup interface {
	Pod(namespace, name string) (PodMetadata, bool)
}

// LogOptions configure a LogCollector.
type LogOptions struct {
	Computer   string // node name; required
	ResourceID string // the cluster's resource ID, for _ResourceId
	Namespaces NamespaceFilter
	// DisableStdout / DisableStderr turn off one stream
	// ([log_collection_settings.stdout|stderr] enabled = false).
	DisableStdout, DisableStderr bool
	// StdoutExcludeNamespaces / StderrExcludeNamespaces drop one stream's
	// lines of the namespaces listed ([log_collection_settings.stdout|stderr]
	// exclude_namespaces).
	StdoutExcludeNamespaces, StderrExcludeNamespaces []string
	// FilterUsingAnnotations drops pods annotated fluentbit.io/exclude: "true".
	// It needs Metadata.
	FilterUsingAnnotations bool
	// Metadata, if set, supplies pod UID, container ID, labels and images.
	Metadata MetadataLookup
	// IncludeMetadata fills KubernetesMetadata (podUid, podLabels,
	// podAnnotations, image, controllerKind, controllerName) from Metadata.
	IncludeMetadata bool
	// RequireMetadata fails closed: lines of a pod the Metadata lookup does
	// not know (yet) are held for up to MetadataWait, then dropped and
	// counted, because the pod's opt-out annotation cannot be checked.
	RequireMetadata bool
	// MetadataWait bounds how long lines wait for their pod's metadata;
	// 0 → 30s.
	MetadataWait time.Duration
	// MetadataRefresh is how long a file's pod metadata is reused; 0 → 10s.
	MetadataRefresh time.Duration
	MaxLogBytes     int // 0 → DefaultMaxLogBytes
	Now             func() time.Time
	Logger          *slog.Logger
}

// maxHeldEntries bounds the lines one file holds while waiting for metadata.
const maxHeldEntries = 4096

// maxTrackedFiles bounds the per-file state kept by a LogCollector.
const maxTrackedFiles = 8192

// LogCollector turns container log lines into ContainerLogV2 rows. Not safe
// for concurrent use: one goroutine (the one polling the tailer) calls it.
type LogCollector struct {
	opts    LogOptions
	log     *slog.Logger
	files   map[string]*logFile
	dropped uint64
}

type logFile struct {
	ref    ContainerRef
	refErr error
	format Format
	asm    *Assembler
	// Pod metadata of the file, looked up at mdAt.
	md     PodMetadata
	haveMD bool
	mdAt   time.Time
	meta   json.RawMessage // KubernetesMetadata encoded once per lookup
	// Entries waiting for the pod's metadata (RequireMetadata), since heldAt.
	held   []Entry
	heldAt time.Time
	// heldFrom is where the first held entry of each file (a rotated file
	// and its successor share the path) starts: the tailer's checkpoint
	// must not pass it (Holds).
	heldFrom []tail.Pos
	// pendAt is where the pending partial message of each stream starts.
	pendAt [2]tail.Pos
	// rewinds are where the tailer must read again (at most one per file)
	// because the held entries were full (Rewinds); lines of that file past
	// it are ignored until then.
	rewinds []tail.Pos
}

// NewLogCollector validates opts and returns a LogCollector.
func NewLogCollector(opts LogOptions) (*LogCollector, error) {
	if opts.Computer == "" {
		return nil, errors.New("kube logs: Computer (node name) is required")
	}
	if err := opts.Namespaces.Validate(); err != nil {
		return nil, fmt.Errorf("kube logs: %w", err)
	}
	if opts.FilterUsingAnnotations && opts.Metadata == nil {
		return nil, errors.New("kube logs: FilterUsingAnnotations needs a Metadata lookup")
	}
	if opts.RequireMetadata && opts.Metadata == nil {
		return nil, errors.New("kube logs: RequireMetadata needs a Metadata lookup")
	}
	if opts.MetadataWait <= 0 {
		opts.MetadataWait = 30 * time.Second
	}
	if opts.MetadataRefresh <= 0 {
		opts.MetadataRefresh = 10 * time.Second
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	lg := opts.Logger
	if lg == nil {
		lg = slog.New(slog.DiscardHandler)
	}
	return &LogCollector{opts: opts, log: lg, files: map[string]*logFile{}}, nil
}

func (c *LogCollector) file(path string) *logFile {
	if f, ok := c.files[path]; ok {
		return f
	}
	if len(c.files) >= maxTrackedFiles {
		clear(c.files) // pending partials of old files are lost; bounded memory wins
	}
	f := &logFile{asm: NewAssembler(c.opts.MaxLogBytes)}
	f.ref, f.refErr = ParseLogPath(path)
	c.files[path] = f
	return f
}

// Add handles one line (without or with its newline) read from the log file
// at path. It returns the rows completed by this line: none for a partial
// line or a filtered container, one otherwise. A malformed line returns an
// error wrapping ErrBadLine; the caller logs it and goes on.
func (c *LogCollector) Add(path string, line []byte) ([]ContainerLogV2, error) {
	return c.AddAt(path, tail.Pos{}, line)
}

// AddAt is Add for a line that starts at position at of its file (the
// tailer's Record.Start). With positions, lines kept in memory (held for
// their pod's metadata, or pieces of a partial message) are reported by
// Holds, so that the tailer's checkpoint does not pass them.
func (c *LogCollector) AddAt(path string, at tail.Pos, line []byte) ([]ContainerLogV2, error) {
	f := c.file(path)
	if f.refErr != nil {
		return nil, f.refErr
	}
	for _, r := range f.rewinds {
		if r.SameFile(at) && at.Offset >= r.Offset {
			return nil, nil // read again after the rewind
		}
	}
	if !c.opts.Namespaces.Allows(f.ref.Namespace) {
		return nil, nil
	}
	if len(bytes.TrimSpace(line)) == 0 {
		return nil, nil
	}
	if f.format == 0 {
		f.format = DetectFormat(line)
	}
	l, err := ParseLine(f.format, line)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	if !c.opts.streamAllows(l.Stream, f.ref.Namespace) {
		return nil, nil
	}
	si := streamIndex(l.Stream)
	if !f.asm.pending[si].active {
		f.pendAt[si] = at
	}
	e, ok := f.asm.Add(l)
	if !ok {
		return nil, nil
	}
	e.at = f.pendAt[si]
	f.pendAt[si] = tail.Pos{}
	return c.rows(f, []Entry{e}), nil
}

// streamAllows applies the per-stream settings to a line of stream in ns.
func (o *LogOptions) streamAllows(stream, ns string) bool {
	switch stream {
	case "stdout":
		return !o.DisableStdout && !slices.Contains(o.StdoutExcludeNamespaces, ns)
	case "stderr":
		return !o.DisableStderr && !slices.Contains(o.StderrExcludeNamespaces, ns)
	}
	return true
}

// Holds returns, per file, the earliest position of a line the collector
// keeps in memory: lines held for their pod's metadata and the pieces of
// partial messages. Pass them to the tailer's Commit so that a restart
// reads those lines again instead of losing them. Lines added without a
// position (Add) are not reported.
func (c *LogCollector) Holds() []tail.Pos {
	var out []tail.Pos
	for _, f := range c.files {
		out = append(out, f.heldFrom...)
		for i, p := range f.pendAt {
			if f.asm.pending[i].active && !p.IsZero() {
				out = append(out, p)
			}
		}
	}
	return out
}

// Rewinds returns the positions the tailer must read again (Tailer.Rewind)
// because a file's held lines reached their bound, and forgets them. Call
// it after the lines of a poll were added and before the next poll.
func (c *LogCollector) Rewinds() []tail.Pos {
	var out []tail.Pos
	for _, f := range c.files {
		out = append(out, f.rewinds...)
		f.rewinds = nil
	}
	return out
}

// Forget drops the state of a file that is gone and returns rows for any
// message still waiting for its final piece.
func (c *LogCollector) Forget(path string) []ContainerLogV2 {
	f, ok := c.files[path]
	if !ok {
		return nil
	}
	delete(c.files, path)
	if f.refErr != nil {
		return nil
	}
	out := c.rows(f, f.asm.Flush())
	if len(f.held) > 0 { // the file is gone and its pod still unknown
		c.dropped += uint64(len(f.held))
	}
	return out
}

// Pending retries the lines held for pod metadata (RequireMetadata): it
// returns the rows of pods now known and drops (and counts) lines that
// waited longer than MetadataWait. Call it after each poll.
func (c *LogCollector) Pending() []ContainerLogV2 {
	var out []ContainerLogV2
	for _, f := range c.files {
		if len(f.held) == 0 {
			continue
		}
		if c.lookup(f, true); f.haveMD {
			held := f.held
			f.held, f.heldFrom = nil, nil
			out = append(out, c.rows(f, held)...)
			continue
		}
		if c.opts.Now().Sub(f.heldAt) > c.opts.MetadataWait {
			c.dropped += uint64(len(f.held))
			c.log.Warn("container log lines dropped: their pod is unknown to the API server, so its opt-out annotation cannot be checked",
				slog.String("namespace", f.ref.Namespace), slog.String("pod", f.ref.Pod), slog.Int("lines", len(f.held)))
			f.held, f.heldFrom = nil, nil
		}
	}
	return out
}

// Dropped counts lines dropped because their pod's metadata never came.
func (c *LogCollector) Dropped() uint64 { return c.dropped }

// lookup refreshes f's pod metadata when it is stale (or force and absent).
func (c *LogCollector) lookup(f *logFile, force bool) {
	if c.opts.Metadata == nil {
		return
	}
	now := c.opts.Now()
	if (force && !f.haveMD) || f.mdAt.IsZero() || now.Sub(f.mdAt) > c.opts.MetadataRefresh {
		f.md, f.haveMD = c.opts.Metadata.Pod(f.ref.Namespace, f.ref.Pod)
		f.mdAt = now
		f.meta = c.metadataJSON(f)
	}
}

// metadataJSON encodes KubernetesMetadata for the rows of f.
func (c *LogCollector) metadataJSON(f *logFile) json.RawMessage {
	if !c.opts.IncludeMetadata {
		return nil
	}
	md, ref := f.md, f.ref
	var meta map[string]any
	switch {
	case f.haveMD:
		meta = map[string]any{"podUid": md.UID}
		if len(md.Labels) > 0 {
			meta["podLabels"] = md.Labels
		}
		if len(md.Annotations) > 0 {
			meta["podAnnotations"] = md.Annotations
		}
		if img := md.Images[ref.Container]; img != "" {
			meta["image"] = img
		}
		if md.ControllerKind != "" {
			meta["controllerKind"], meta["controllerName"] = md.ControllerKind, md.ControllerName
		}
	case ref.PodUID != "":
		meta = map[string]any{"podUid": ref.PodUID}
	default:
		return nil
	}
	b, err := json.Marshal(meta)
	if err != nil {
		return nil
	}
	return b
}

func (c *LogCollector) rows(f *logFile, entries []Entry) []ContainerLogV2 {
	if len(entries) == 0 {
		return nil
	}
	ref := f.ref
	c.lookup(f, len(f.held) == 0)
	md, haveMD := f.md, f.haveMD
	if c.opts.RequireMetadata && !haveMD {
		if len(f.held) == 0 {
			f.heldAt = c.opts.Now()
		}
		if room := maxHeldEntries - len(f.held); room < len(entries) {
			// Full: the rest is read again later when its position is
			// known (the tailer rewinds), else dropped and counted.
			rest := entries[max(room, 0):]
			entries = entries[:max(room, 0)]
			if at := rest[0].at; !at.IsZero() {
				if i := slices.IndexFunc(f.rewinds, at.SameFile); i < 0 {
					f.rewinds = append(f.rewinds, at)
				} else if at.Offset < f.rewinds[i].Offset {
					f.rewinds[i] = at
				}
			} else {
				c.dropped += uint64(len(rest))
			}
		}
		for _, e := range entries {
			if !e.at.IsZero() && !slices.ContainsFunc(f.heldFrom, e.at.SameFile) {
				f.heldFrom = append(f.heldFrom, e.at)
			}
		}
		f.held = append(f.held, entries...)
		return nil
	}
	if len(f.held) > 0 { // the metadata came: the held lines go first
		entries = append(f.held, entries...)
		f.held, f.heldFrom = nil, nil
	}
	if c.opts.FilterUsingAnnotations && haveMD && strings.EqualFold(md.Annotations[ExcludeAnnotation], "true") {
		return nil
	}
	id := ref.ContainerID
	if id == "" && haveMD {
		id = md.ContainerIDs[ref.Container]
	}
	if f.meta == nil && c.opts.IncludeMetadata && c.opts.Metadata == nil {
		f.meta = c.metadataJSON(f)
	}
	meta := f.meta
	out := make([]ContainerLogV2, 0, len(entries))
	for _, e := range entries {
		msg, level := messageAndLevel(e.Message)
		out = append(out, ContainerLogV2{
			TimeGenerated: e.Time, Computer: c.opts.Computer, ContainerID: id, ContainerName: ref.Container,
			PodName: ref.Pod, PodNamespace: ref.Namespace, LogMessage: msg, LogSource: e.Stream, LogLevel: level,
			KubernetesMetadata: meta, SourceSystem: "Containers", ResourceID: c.opts.ResourceID,
		})
	}
	return out
}

// messageAndLevel returns LogMessage (the object when msg is a JSON object,
// else a JSON string) and the detected level.
func messageAndLevel(msg string) (json.RawMessage, string) {
	trimmed := strings.TrimSpace(msg)
	if len(trimmed) > 1 && trimmed[0] == '{' && json.Valid([]byte(trimmed)) {
		var obj map[string]json.RawMessage
		if json.Unmarshal([]byte(trimmed), &obj) == nil {
			return json.RawMessage(trimmed), levelFromJSON(obj)
		}
	}
	b, _ := json.Marshal(msg) // a string always marshals (invalid UTF-8 becomes U+FFFD)
	return b, LevelFromText(msg)
}

// levelKeys are the JSON fields consulted for the level, in order.
var levelKeys = []string{"level", "severity", "loglevel", "log.level", "lvl", "levelname", "log_level", "severitytext"}

func levelFromJSON(obj map[string]json.RawMessage) string {
	for _, want := range levelKeys {
		for k, v := range obj {
			if !strings.EqualFold(k, want) {
				continue
			}
			var s string
			if json.Unmarshal(v, &s) == nil {
				if l := normalizeLevel(s); l != "" {
					return l
				}
				continue
			}
			var n float64
			if json.Unmarshal(v, &n) == nil {
				if l := numericLevel(n); l != "" {
					return l
				}
			}
		}
	}
	return LevelUnknown
}

// numericLevel maps bunyan/pino numeric levels.
func numericLevel(n float64) string {
	switch {
	case n >= 60:
		return LevelCritical
	case n >= 50:
		return LevelError
	case n >= 40:
		return LevelWarning
	case n >= 30:
		return LevelInfo
	case n >= 20:
		return LevelDebug
	case n >= 10:
		return LevelTrace
	}
	return ""
}

func normalizeLevel(s string) string {
	switch strings.ToLower(strings.TrimSpace(s)) {
	case "critical", "crit", "fatal", "panic", "emerg", "emergency", "alert", "dpanic":
		return LevelCritical
	case "error", "err", "eror", "severe":
		return LevelError
	case "warning", "warn", "wrn":
		return LevelWarning
	case "info", "information", "informational", "notice", "inf":
		return LevelInfo
	case "debug", "dbg", "dbug", "fine":
		return LevelDebug
	case "trace", "trc", "finest", "finer", "verbose":
		return LevelTrace
	}
	return ""
}

// LevelFromText detects the level of a plain-text line: a level word among
// the first few words ("ERROR ...", "[warn] ...", "2024-01-01 INFO ..."),
// (past the first word, upper-case only), a logfmt level=... pair, or a klog header ("E0612 12:00:00.000000 ...").
func LevelFromText(msg string) string {
	head := msg
	if len(head) > 256 {
		head = head[:256]
	}
	if i := strings.Index(strings.ToLower(head), "level="); i >= 0 {
		v := head[i+len("level="):]
		v = strings.Trim(strings.Fields(v + " ")[0], `"'`)
		if l := normalizeLevel(v); l != "" {
			return l
		}
	}
	if len(head) >= 5 && strings.IndexByte("IWEF", head[0]) >= 0 && digits(head[1:5]) && (len(head) == 5 || head[5] == ' ') {
		return map[byte]string{'I': LevelInfo, 'W': LevelWarning, 'E': LevelError, 'F': LevelCritical}[head[0]]
	}
	for i, w := range strings.Fields(head) {
		w = strings.Trim(w, "[]():|<>,;")
		if i >= 4 {
			break
		}
		// Past the first word only an upper-case word counts, so that
		// "could not fetch info" is not INFO.
		if i > 0 && w != strings.ToUpper(w) {
			continue
		}
		if l := normalizeLevel(w); l != "" {
			return l
		}
	}
	return LevelUnknown
}

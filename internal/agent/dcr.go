package agent

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"
)

// maxRuleFileBytes bounds one DCR file.
const maxRuleFileBytes = 4 << 20

// DCR is the part of a data collection rule (Microsoft.Insights/dataCollectionRules,
// spec §2.3) that the agent acts on. It is parsed from the same JSON the ARM
// API returns.
type DCR struct {
	ID          string // ARM resource ID
	Name        string
	ETag        string
	ImmutableID string
	Origin      string // where it came from (file path or URL)

	Streams     map[string][]StreamColumn // streamDeclarations
	DataSources DataSources
	DataFlows   []DataFlow
	Unsupported []string // data source kinds the agent ignores
}

// StreamColumn is one column of a stream declaration.
type StreamColumn struct {
	Name string `json:"name"`
	Type string `json:"type"`
}

// DataFlow is one dataFlows entry; the agent needs only its streams.
type DataFlow struct {
	Streams      []string `json:"streams"`
	Destinations []string `json:"destinations"`
	OutputStream string   `json:"outputStream"`
}

// DataSources are the data sources the agent implements.
type DataSources struct {
	PerformanceCounters []PerfSource    `json:"performanceCounters"`
	Syslog              []SyslogSource  `json:"syslog"`
	LogFiles            []LogFileSource `json:"logFiles"`
	// Extensions are the extension data sources the agent implements: only
	// ContainerInsights (Kubernetes mode).
	Extensions []ExtensionSource `json:"extensions"`
}

// ExtensionNameContainerInsights is the extensionName of Container insights.
const ExtensionNameContainerInsights = "ContainerInsights"

// ExtensionSource is an extensions data source. For ContainerInsights,
// ExtensionSettings holds dataCollectionSettings.
type ExtensionSource struct {
	Name              string          `json:"name"`
	Streams           []string        `json:"streams"`
	ExtensionName     string          `json:"extensionName"`
	ExtensionSettings json.RawMessage `json:"extensionSettings"`
}

// ContainerInsightsSettings is extensionSettings.dataCollectionSettings of
// a ContainerInsights extension. Unset fields leave the agent's kubernetes
// configuration in force.
type ContainerInsightsSettings struct {
	// Interval is Azure's "1m".."30m"; the agent accepts any duration of at least 1s.
	Interval               time.Duration
	NamespaceFilteringMode string // "" when unset
	Namespaces             []string
	NamespacesSet          bool
	EnableContainerLogV2   *bool
}

// ContainerInsights parses the extension's dataCollectionSettings.
func (e ExtensionSource) ContainerInsights() (ContainerInsightsSettings, error) {
	var out ContainerInsightsSettings
	if len(e.ExtensionSettings) == 0 || string(e.ExtensionSettings) == "null" {
		return out, nil
	}
	var raw struct {
		DataCollectionSettings *struct {
			Interval               string    `json:"interval"`
			NamespaceFilteringMode string    `json:"namespaceFilteringMode"`
			Namespaces             *[]string `json:"namespaces"`
			EnableContainerLogV2   *bool     `json:"enableContainerLogV2"`
		} `json:"dataCollectionSettings"`
	}
	if err := json.Unmarshal(e.ExtensionSettings, &raw); err != nil {
		return out, fmt.Errorf("extension %s: extensionSettings: %w", e.Name, err)
	}
	d := raw.DataCollectionSettings
	if d == nil {
		return out, nil
	}
	if d.Interval != "" {
		iv, err := time.ParseDuration(d.Interval)
		if err != nil || iv < time.Second {
			return out, fmt.Errorf("extension %s: dataCollectionSettings.interval %q: want a duration such as \"1m\" (at least 1s)", e.Name, d.Interval)
		}
		out.Interval = iv
	}
	switch m := d.NamespaceFilteringMode; {
	case m == "":
	case strings.EqualFold(m, "Off"), strings.EqualFold(m, "Include"), strings.EqualFold(m, "Exclude"):
		out.NamespaceFilteringMode = strings.ToUpper(m[:1]) + strings.ToLower(m[1:])
	default:
		return out, fmt.Errorf("extension %s: dataCollectionSettings.namespaceFilteringMode %q: want Off, Include or Exclude", e.Name, m)
	}
	if d.Namespaces != nil {
		out.Namespaces, out.NamespacesSet = *d.Namespaces, true
	}
	out.EnableContainerLogV2 = d.EnableContainerLogV2
	return out, nil
}

// PerfSource is a performanceCounters data source.
type PerfSource struct {
	Name                       string   `json:"name"`
	Streams                    []string `json:"streams"`
	SamplingFrequencyInSeconds int      `json:"samplingFrequencyInSeconds"`
	CounterSpecifiers          []string `json:"counterSpecifiers"`
}

// SyslogSource is a syslog data source.
type SyslogSource struct {
	Name          string   `json:"name"`
	Streams       []string `json:"streams"`
	FacilityNames []string `json:"facilityNames"`
	LogLevels     []string `json:"logLevels"`
}

// LogFileSource is a logFiles data source.
type LogFileSource struct {
	Name         string   `json:"name"`
	Streams      []string `json:"streams"`
	FilePatterns []string `json:"filePatterns"`
	Format       string   `json:"format"` // text or json
	Settings     struct {
		Text struct {
			RecordStartTimestampFormat string `json:"recordStartTimestampFormat"`
		} `json:"text"`
	} `json:"settings"`
}

type dcrJSON struct {
	ID         string `json:"id"`
	Name       string `json:"name"`
	Etag       string `json:"etag"`
	Properties struct {
		ImmutableID        string `json:"immutableId"`
		StreamDeclarations map[string]struct {
			Columns []StreamColumn `json:"columns"`
		} `json:"streamDeclarations"`
		DataSources map[string]json.RawMessage `json:"dataSources"`
		DataFlows   []DataFlow                 `json:"dataFlows"`
	} `json:"properties"`
}

// ParseDCR parses a data collection rule resource as the ARM API returns it.
// Unknown fields are ignored (the resource has many the agent does not use);
// data source kinds the agent does not implement are listed in Unsupported.
func ParseDCR(data []byte) (*DCR, error) {
	var j dcrJSON
	if err := json.Unmarshal(data, &j); err != nil {
		return nil, fmt.Errorf("parse data collection rule: %w", err)
	}
	p := j.Properties
	if !strings.HasPrefix(p.ImmutableID, "dcr-") || len(p.ImmutableID) > 64 || strings.ContainsAny(p.ImmutableID, "/?#% ") {
		return nil, fmt.Errorf("data collection rule %q has no valid properties.immutableId", j.Name)
	}
	d := &DCR{ID: j.ID, Name: j.Name, ETag: j.Etag, ImmutableID: p.ImmutableID, Streams: map[string][]StreamColumn{}, DataFlows: p.DataFlows}
	for name, s := range p.StreamDeclarations {
		d.Streams[name] = s.Columns
	}
	kinds := make([]string, 0, len(p.DataSources))
	for k := range p.DataSources {
		kinds = append(kinds, k)
	}
	sort.Strings(kinds)
	for _, kind := range kinds {
		raw := p.DataSources[kind]
		var err error
		switch kind {
		case "performanceCounters":
			err = json.Unmarshal(raw, &d.DataSources.PerformanceCounters)
		case "syslog":
			err = json.Unmarshal(raw, &d.DataSources.Syslog)
		case "logFiles":
			err = json.Unmarshal(raw, &d.DataSources.LogFiles)
		case "extensions":
			var all []ExtensionSource
			if err = json.Unmarshal(raw, &all); err == nil {
				for _, e := range all {
					if strings.EqualFold(e.ExtensionName, ExtensionNameContainerInsights) {
						if _, err = e.ContainerInsights(); err != nil {
							break
						}
						d.DataSources.Extensions = append(d.DataSources.Extensions, e)
					} else {
						d.Unsupported = append(d.Unsupported, "extensions:"+e.ExtensionName)
					}
				}
			}
		default:
			d.Unsupported = append(d.Unsupported, kind)
		}
		if err != nil {
			return nil, fmt.Errorf("data collection rule %s: dataSources.%s: %w", d.Name, kind, err)
		}
	}
	return d, nil
}

// flows reports whether some data flow of the rule consumes stream; the
// ingestion API rejects streams that no flow uses.
func (d *DCR) flows(stream string) bool {
	for _, f := range d.DataFlows {
		for _, s := range f.Streams {
			if strings.EqualFold(s, stream) {
				return true
			}
		}
	}
	return false
}

// RuleSource supplies the data collection rules that apply to this machine.
// The agent calls Rules every poll interval and reconfigures itself when the
// version changes. Today's implementation reads files (DirSource); fetching
// the rules associated with the machine from Custos (with ETags) will be a
// second implementation once DCR associations and machine identities exist.
type RuleSource interface {
	Rules(ctx context.Context) (rules []*DCR, version string, err error)
}

// DirSource reads every *.json file of a directory as one data collection
// rule. The version is a hash of the files' names and contents, so any
// change (including mtime-preserving copies) is seen on the next poll.
type DirSource struct {
	Dir string
}

// Rules implements RuleSource. A file that does not parse is an error (the
// agent then keeps its current rules and reports the error), so a half-written
// edit never drops collection.
func (s DirSource) Rules(ctx context.Context) ([]*DCR, string, error) {
	matches, err := filepath.Glob(filepath.Join(s.Dir, "*.json"))
	if err != nil {
		return nil, "", err
	}
	if _, err := os.Stat(s.Dir); err != nil {
		return nil, "", fmt.Errorf("data collection rule directory: %w", err)
	}
	sort.Strings(matches)
	h := sha256.New()
	var rules []*DCR
	seen := map[string]string{}
	var errs []error
	for _, m := range matches {
		if err := ctx.Err(); err != nil {
			return nil, "", err
		}
		fi, err := os.Stat(m)
		if err != nil || !fi.Mode().IsRegular() {
			continue
		}
		if fi.Size() > maxRuleFileBytes {
			errs = append(errs, fmt.Errorf("%s: larger than %d bytes", m, maxRuleFileBytes))
			continue
		}
		data, err := os.ReadFile(m)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		h.Write([]byte(filepath.Base(m)))
		h.Write([]byte{0})
		h.Write(data)
		h.Write([]byte{0})
		d, err := ParseDCR(data)
		if err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", m, err))
			continue
		}
		if prev, dup := seen[d.ImmutableID]; dup {
			errs = append(errs, fmt.Errorf("%s: immutableId %s is also in %s", m, d.ImmutableID, prev))
			continue
		}
		seen[d.ImmutableID] = m
		d.Origin = m
		rules = append(rules, d)
	}
	if err := errors.Join(errs...); err != nil {
		return nil, "", err
	}
	return rules, hex.EncodeToString(h.Sum(nil)), nil
}

package cli

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"unicode"
	"unicode/utf8"
)

// Table is text output in aligned columns.
type Table struct {
	Columns []string
	Rows    [][]string
}

// maxCellRunes bounds one cell in table output; JSON output is never cut.
const maxCellRunes = 200

// Write renders t with columns separated by two spaces. Cells are made safe
// for a terminal: control characters (including escape sequences from data)
// are shown escaped, and very long cells are cut with "...".
func (t *Table) Write(w io.Writer) error {
	cells := make([][]string, 0, len(t.Rows)+1)
	cells = append(cells, t.Columns)
	for _, r := range t.Rows {
		row := make([]string, len(t.Columns))
		for i := range row {
			if i < len(r) {
				row[i] = SafeText(r[i], maxCellRunes)
			}
		}
		cells = append(cells, row)
	}
	width := make([]int, len(t.Columns))
	for _, row := range cells {
		for i, c := range row {
			width[i] = max(width[i], utf8.RuneCountInString(c))
		}
	}
	bw := bufio.NewWriter(w)
	var line strings.Builder
	for _, row := range cells {
		line.Reset()
		for i, c := range row {
			line.WriteString(c)
			if i < len(row)-1 {
				line.WriteString(strings.Repeat(" ", width[i]-utf8.RuneCountInString(c)+2))
			}
		}
		bw.WriteString(strings.TrimRight(line.String(), " "))
		bw.WriteByte('\n')
	}
	return bw.Flush()
}

// WriteFields renders name/value pairs, one per line, names aligned.
func WriteFields(w io.Writer, fields [][2]string) error {
	width := 0
	for _, f := range fields {
		width = max(width, utf8.RuneCountInString(f[0]))
	}
	bw := bufio.NewWriter(w)
	for _, f := range fields {
		fmt.Fprintf(bw, "%s:%s%s\n", f[0], strings.Repeat(" ", width-utf8.RuneCountInString(f[0])+1), SafeText(f[1], 4*maxCellRunes))
	}
	return bw.Flush()
}

// SafeText returns s as one terminal-safe line: control characters are
// escaped as in Go string literals, invalid UTF-8 is replaced, and s is cut to
// maxRunes runes (0 means no limit).
func SafeText(s string, maxRunes int) string {
	var b strings.Builder
	n := 0
	for _, r := range strings.ToValidUTF8(s, "\uFFFD") {
		if maxRunes > 0 && n == maxRunes {
			b.WriteString("...")
			break
		}
		switch {
		case r == '\n':
			b.WriteString(`\n`)
		case r == '\t':
			b.WriteString(`\t`)
		case r == '\r':
			b.WriteString(`\r`)
		case unicode.IsControl(r) || r == '\u2028' || r == '\u2029' || unicode.Is(unicode.Bidi_Control, r):
			fmt.Fprintf(&b, `\u%04x`, r)
		default:
			b.WriteRune(r)
		}
		n++
	}
	return b.String()
}

// WriteJSON writes v as indented JSON without HTML escaping.
func WriteJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetEscapeHTML(false)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}

// WriteRawJSON writes a JSON document received from the server, indented.
func WriteRawJSON(w io.Writer, raw []byte) error {
	var buf bytes.Buffer
	if err := json.Indent(&buf, raw, "", "  "); err != nil {
		return fmt.Errorf("server sent invalid JSON: %w", err)
	}
	buf.WriteByte('\n')
	_, err := w.Write(buf.Bytes())
	return err
}

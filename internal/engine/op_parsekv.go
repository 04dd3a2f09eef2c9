package engine

import (
	"regexp"
	"strings"
	"unicode"
	"unicode/utf8"

	"custos/internal/kql"
	"custos/internal/store"
)

// parseKV runs parse-kv on one batch: the input columns plus one column per
// key. A key that does not occur is null (empty for strings); the first
// occurrence wins; keys and values are trimmed of surrounding spaces.
func (x *executor) parseKV(p *kql.ParseKV, b *store.Batch) (*store.Batch, error) {
	src, err := x.ev.eval(p.X, b)
	if err != nil {
		return nil, err
	}
	var re *regexp.Regexp
	if p.Mode == kql.KVRegex {
		if re, err = regexp.Compile(p.Regex); err != nil {
			return nil, &ExecError{Msg: "parse-kv: " + (&kql.RegexError{Pattern: p.Regex, Problem: "the pattern does not compile"}).Error()}
		}
	}
	want := make(map[string]int, len(p.Keys))
	for i, k := range p.Keys {
		want[k.Name] = i
	}
	cols := make([]*store.Vector, len(p.Keys))
	for i, k := range p.Keys {
		cols[i] = newVector(k.Type, b.Len)
		if k.Type != store.TypeString {
			cols[i].Nulls = make([]bool, b.Len)
		}
	}
	found := make([]bool, len(p.Keys))
	for r := 0; r < b.Len; r++ {
		clear(found)
		set := func(key, val string) {
			i, ok := want[key]
			if !ok || found[i] {
				return
			}
			found[i] = true
			switch p.Keys[i].Type {
			case store.TypeString:
				cols[i].Str[r] = val
				return
			case store.TypeGUID:
				if guidText.MatchString(val) {
					cols[i].Str[r] = strings.ToLower(val)
				} else {
					cols[i].Nulls[r] = true
				}
				return
			}
			if !convertOne(kql.StringValue(val), p.Keys[i].Type, cols[i], r) {
				cols[i].Nulls[r] = true
			}
		}
		if !src.IsNull(r) {
			s := src.Str[r]
			switch p.Mode {
			case kql.KVRegex:
				for _, m := range re.FindAllStringSubmatch(s, -1) {
					set(strings.TrimSpace(m[1]), strings.TrimSpace(m[2]))
				}
			case kql.KVDelimited:
				kvDelimited(s, p, set)
			default:
				kvAnyDelim(s, p, set)
			}
		}
		for i, k := range p.Keys {
			if !found[i] && k.Type != store.TypeString {
				cols[i].Nulls[r] = true
			}
		}
	}
	schema := p.Schema()
	out := &store.Batch{Schema: schema, Cols: make([]*store.Vector, len(schema)), Len: b.Len}
	for i, c := range schema {
		if k, ok := want[c.Name]; ok {
			out.Cols[i] = cols[k]
		} else {
			out.Cols[i] = b.Col(c.Name)
		}
	}
	return out, nil
}

var guidText = regexp.MustCompile(`^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$`)

// quoteAt reports whether s[i:] opens a quote of p and returns its closing
// character.
func quoteAt(s string, i int, quotes []string) (close string, open int, ok bool) {
	for _, q := range quotes {
		o, n := utf8.DecodeRuneInString(q)
		c := string(o)
		if len(q) > n {
			c = q[n:]
		}
		if strings.HasPrefix(s[i:], string(o)) {
			return c, n, true
		}
	}
	return "", 0, false
}

// readQuoted reads a quoted text starting after its opening quote at i; it
// returns the text (escapes resolved) and the index after the closing quote.
func readQuoted(s string, i int, close string, escapes []string) (string, int) {
	var b strings.Builder
	for i < len(s) {
		escaped := false
		for _, e := range escapes {
			if strings.HasPrefix(s[i:], e) && i+len(e) < len(s) {
				_, n := utf8.DecodeRuneInString(s[i+len(e):])
				b.WriteString(s[i+len(e) : i+len(e)+n])
				i += len(e) + n
				escaped = true
				break
			}
		}
		if escaped {
			continue
		}
		if strings.HasPrefix(s[i:], close) {
			return b.String(), i + len(close)
		}
		_, n := utf8.DecodeRuneInString(s[i:])
		b.WriteString(s[i : i+n])
		i += n
	}
	return b.String(), i
}

// kvDelimited extracts pairs separated by p.PairDelim, with keys separated
// from values by p.KVDelim. With Greedy, an unquoted value runs to the pair
// delimiter that precedes the next key (so values may contain the pair
// delimiter).
func kvDelimited(s string, p *kql.ParseKV, set func(k, v string)) {
	i := 0
	for i < len(s) {
		for i < len(s) && s[i] == ' ' {
			i++
		}
		// The key.
		var key string
		if c, n, ok := quoteAt(s, i, p.Quotes); ok {
			key, i = readQuoted(s, i+n, c, p.Escapes)
			if j := strings.Index(s[i:], p.KVDelim); j >= 0 && strings.TrimSpace(s[i:i+j]) == "" {
				i += j
			}
		} else {
			kv := strings.Index(s[i:], p.KVDelim)
			pd := strings.Index(s[i:], p.PairDelim)
			if kv < 0 {
				return
			}
			if pd >= 0 && pd < kv {
				i += pd + len(p.PairDelim) // a pair without a value
				continue
			}
			key = s[i : i+kv]
			i += kv
		}
		if !strings.HasPrefix(s[i:], p.KVDelim) {
			// No value: skip to the next pair.
			if pd := strings.Index(s[i:], p.PairDelim); pd >= 0 {
				i += pd + len(p.PairDelim)
				continue
			}
			return
		}
		i += len(p.KVDelim)
		for i < len(s) && s[i] == ' ' {
			i++
		}
		// The value.
		var val string
		if c, n, ok := quoteAt(s, i, p.Quotes); ok {
			val, i = readQuoted(s, i+n, c, p.Escapes)
			set(strings.TrimSpace(key), val)
			if pd := strings.Index(s[i:], p.PairDelim); pd >= 0 {
				i += pd + len(p.PairDelim)
				continue
			}
			return
		}
		end := len(s)
		next := len(s)
		if p.Greedy {
			if kv := strings.Index(s[i:], p.KVDelim); kv >= 0 {
				if pd := strings.LastIndex(s[i:i+kv], p.PairDelim); pd >= 0 {
					end, next = i+pd, i+pd+len(p.PairDelim)
				}
			}
		} else if pd := strings.Index(s[i:], p.PairDelim); pd >= 0 {
			end, next = i+pd, i+pd+len(p.PairDelim)
		}
		set(strings.TrimSpace(key), strings.TrimSpace(s[i:end]))
		i = next
	}
}

// kvAnyDelim extracts values when any non-alphanumeric character delimits:
// the text is split into words (runs of letters, digits and '_', or quoted
// texts) and a listed key's value is the word after it.
func kvAnyDelim(s string, p *kql.ParseKV, set func(k, v string)) {
	var words []string
	i := 0
	for i < len(s) {
		if c, n, ok := quoteAt(s, i, p.Quotes); ok {
			var w string
			w, i = readQuoted(s, i+n, c, p.Escapes)
			words = append(words, w)
			continue
		}
		r, n := utf8.DecodeRuneInString(s[i:])
		if !(unicode.IsLetter(r) || unicode.IsDigit(r) || r == '_') {
			i += n
			continue
		}
		j := i
		for j < len(s) {
			r, n := utf8.DecodeRuneInString(s[j:])
			if !(unicode.IsLetter(r) || unicode.IsDigit(r) || r == '_' || r == '.' || r == '-') {
				break
			}
			j += n
		}
		words = append(words, strings.TrimRight(s[i:j], ".-"))
		i = j
	}
	for k := 0; k+1 < len(words); k++ {
		set(words[k], words[k+1])
	}
}

// packColumns adds the pack_ column of find: a property bag of the row's
// non-empty values of p.Cols.
func packColumns(p *kql.Pack, b *store.Batch) *store.Batch {
	vecs := make([]*store.Vector, len(p.Cols))
	for i, c := range p.Cols {
		vecs[i] = b.Col(c)
	}
	bag := newVector(store.TypeDynamic, b.Len)
	var sb strings.Builder
	for r := 0; r < b.Len; r++ {
		sb.Reset()
		sb.WriteByte('{')
		first := true
		for i, v := range vecs {
			if v == nil || v.IsNull(r) {
				continue
			}
			val := valueAt(v, r)
			if (val.Type == store.TypeString || val.Type == store.TypeDynamic) && (val.Str == "" || val.Str == "null") {
				continue
			}
			if !first {
				sb.WriteByte(',')
			}
			first = false
			sb.WriteString(jsonValue(kql.StringValue(p.Cols[i])))
			sb.WriteByte(':')
			sb.WriteString(jsonValue(val))
		}
		sb.WriteByte('}')
		bag.Str[r] = sb.String()
	}
	schema := p.Schema()
	out := &store.Batch{Schema: schema, Cols: make([]*store.Vector, len(schema)), Len: b.Len}
	for i, c := range schema {
		if c.Name == p.Name {
			out.Cols[i] = bag
		} else {
			out.Cols[i] = b.Col(c.Name)
		}
	}
	return out
}

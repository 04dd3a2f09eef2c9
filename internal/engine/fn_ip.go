package engine

import (
	"strconv"
	"strings"

	"custos/internal/kql"
	"custos/internal/store"
)

// parseIPv4Prefix parses "a.b.c.d" or "a.b.c.d/n" into the address and its
// prefix length (32 without one).
func parseIPv4Prefix(s string) (uint32, int, bool) {
	s = strings.TrimSpace(s)
	addr, pfx, hasPfx := strings.Cut(s, "/")
	prefix := 32
	if hasPfx {
		p, err := strconv.Atoi(pfx)
		if err != nil || p < 0 || p > 32 {
			return 0, 0, false
		}
		prefix = p
	}
	parts := strings.Split(addr, ".")
	if len(parts) != 4 {
		return 0, 0, false
	}
	var ip uint32
	for _, p := range parts {
		if p == "" || len(p) > 3 {
			return 0, 0, false
		}
		v, err := strconv.Atoi(p)
		if err != nil || v < 0 || v > 255 {
			return 0, 0, false
		}
		ip = ip<<8 | uint32(v)
	}
	return ip, prefix, true
}

func ipv4Mask(prefix int) uint32 {
	if prefix <= 0 {
		return 0
	}
	return ^uint32(0) << (32 - prefix)
}

func formatIPv4(ip uint32) string {
	return strconv.Itoa(int(ip>>24)) + "." + strconv.Itoa(int(ip>>16&255)) + "." + strconv.Itoa(int(ip>>8&255)) + "." + strconv.Itoa(int(ip&255))
}

// ipv4Compare compares two addresses under the shortest of their prefixes
// and the optional mask; ok is false for invalid input.
func ipv4Compare(a, b string, mask int64, hasMask bool) (int, bool) {
	ia, pa, ok1 := parseIPv4Prefix(a)
	ib, pb, ok2 := parseIPv4Prefix(b)
	if !ok1 || !ok2 || (hasMask && (mask < 0 || mask > 32)) {
		return 0, false
	}
	p := min(pa, pb)
	if hasMask {
		p = min(p, int(mask))
	}
	m := ipv4Mask(p)
	return cmpInt(int64(ia&m), int64(ib&m)), true
}

func (ev *evaluator) ipFunctions(c *kql.FnCall, args []*store.Vector, n int) (*store.Vector, bool) {
	t := c.T
	null := kql.NullValue(t)
	switch c.Fn {
	case kql.FnIPv4IsInRange:
		return rowFunc(t, args, n, func(v []kql.Value) kql.Value {
			ip, _, ok1 := parseIPv4Prefix(v[0].Str)
			r, p, ok2 := parseIPv4Prefix(v[1].Str)
			if !ok1 || !ok2 {
				return null
			}
			m := ipv4Mask(p)
			return kql.BoolValue(ip&m == r&m)
		}), true
	case kql.FnIPv4IsPrivate:
		return rowFunc(t, args, n, func(v []kql.Value) kql.Value {
			ip, _, ok := parseIPv4Prefix(v[0].Str)
			if !ok {
				return null
			}
			private := ip&ipv4Mask(8) == 10<<24 || ip&ipv4Mask(12) == 172<<24|16<<16 || ip&ipv4Mask(16) == 192<<24|168<<16
			return kql.BoolValue(private)
		}), true
	case kql.FnParseIPv4:
		return rowFunc(t, args, n, func(v []kql.Value) kql.Value {
			ip, p, ok := parseIPv4Prefix(v[0].Str)
			if !ok {
				return null
			}
			return kql.LongValue(int64(ip & ipv4Mask(p)))
		}), true
	case kql.FnIPv4Compare, kql.FnIPv4IsMatch:
		return rowFunc(t, args, n, func(v []kql.Value) kql.Value {
			var mask int64
			hasMask := len(v) == 3
			if hasMask {
				if v[2].Null {
					return null
				}
				mask = v[2].Int
			}
			r, ok := ipv4Compare(v[0].Str, v[1].Str, mask, hasMask)
			if !ok {
				return null
			}
			if c.Fn == kql.FnIPv4IsMatch {
				return kql.BoolValue(r == 0)
			}
			return kql.LongValue(int64(r))
		}), true
	case kql.FnFormatIPv4:
		return rowFunc(t, args, n, func(v []kql.Value) kql.Value {
			s := v[0].Str
			var ip uint32
			p := 32
			if x, err := strconv.ParseInt(s, 10, 64); err == nil {
				if x < 0 || x > 0xffffffff {
					return kql.StringValue("")
				}
				ip = uint32(x)
			} else {
				var ok bool
				if ip, p, ok = parseIPv4Prefix(s); !ok {
					return kql.StringValue("")
				}
			}
			if v[1].Null || v[1].Int < 0 || v[1].Int > 32 {
				return kql.StringValue("")
			}
			return kql.StringValue(formatIPv4(ip & ipv4Mask(min(p, int(v[1].Int)))))
		}), true
	}
	return nil, false
}

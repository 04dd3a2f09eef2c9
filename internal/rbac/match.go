package rbac

import "strings"

// pattern is a compiled action pattern: the lower-cased text split at each
// "*", which matches any run of characters (including "/"), as in Azure.
type pattern struct {
	parts []string // len(parts) == number of '*' + 1
}

func compilePattern(p string) pattern {
	return pattern{parts: strings.Split(strings.ToLower(strings.TrimSpace(p)), "*")}
}

// match reports whether the lower-cased operation s matches p.
func (p pattern) match(s string) bool {
	parts := p.parts
	if len(parts) == 1 {
		return s == parts[0]
	}
	if !strings.HasPrefix(s, parts[0]) {
		return false
	}
	s = s[len(parts[0]):]
	last := parts[len(parts)-1]
	for _, mid := range parts[1 : len(parts)-1] {
		i := strings.Index(s, mid)
		if i < 0 {
			return false
		}
		s = s[i+len(mid):]
	}
	return len(s) >= len(last) && strings.HasSuffix(s, last)
}

type patternSet []pattern

func compileSet(ps []string) patternSet {
	out := make(patternSet, 0, len(ps))
	for _, p := range ps {
		if strings.TrimSpace(p) != "" {
			out = append(out, compilePattern(p))
		}
	}
	return out
}

func (ps patternSet) match(s string) bool {
	for _, p := range ps {
		if p.match(s) {
			return true
		}
	}
	return false
}

// compiledRole is a role definition ready for matching.
type compiledRole struct {
	def   RoleDefinition
	perms []compiledPermission
}

type compiledPermission struct {
	actions, notActions, dataActions, notDataActions patternSet
}

func compileRole(d RoleDefinition) *compiledRole {
	cr := &compiledRole{def: d}
	for _, p := range d.Permissions {
		cr.perms = append(cr.perms, compiledPermission{
			actions:        compileSet(p.Actions),
			notActions:     compileSet(p.NotActions),
			dataActions:    compileSet(p.DataActions),
			notDataActions: compileSet(p.NotDataActions),
		})
	}
	return cr
}

// allows reports whether the role grants the lower-cased operation op; data
// says whether op is a data action.
func (r *compiledRole) allows(op string, data bool) bool {
	for _, p := range r.perms {
		if data {
			if p.dataActions.match(op) && !p.notDataActions.match(op) {
				return true
			}
			continue
		}
		if p.actions.match(op) && !p.notActions.match(op) {
			return true
		}
	}
	return false
}

// normalizeScope returns the canonical lower-case form of a scope: a leading
// "/", no trailing "/" (except the root), no empty, "." or ".." segments. ok
// is false for anything that is not a well-formed scope.
func normalizeScope(s Scope) (string, bool) {
	str := string(s)
	if len(str) == 0 || len(str) > 2048 || str[0] != '/' {
		return "", false
	}
	if str == "/" {
		return "/", true
	}
	str = strings.TrimSuffix(str, "/")
	for _, seg := range strings.Split(str[1:], "/") {
		if seg == "" || seg == "." || seg == ".." {
			return "", false
		}
		for i := 0; i < len(seg); i++ {
			if c := seg[i]; c < 0x20 || c == 0x7f {
				return "", false
			}
		}
	}
	return strings.ToLower(str), true
}

// covers reports whether an assignment at the normalized scope parent applies
// to the normalized scope child: the same scope, or one below it on a path
// segment boundary.
func covers(parent, child string) bool {
	if parent == "/" || parent == child {
		return true
	}
	return len(child) > len(parent) && strings.HasPrefix(child, parent) && child[len(parent)] == '/'
}

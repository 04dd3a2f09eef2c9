package kql

import (
	"strings"
	"testing"
)

// TestRegistryResolves checks the registry against the binder: every
// registered name and alias binds (with its own arity or type complaints at
// most), and a name outside the registry is unknown.
func TestRegistryResolves(t *testing.T) {
	seen := map[string]bool{}
	for _, f := range Functions() {
		for _, name := range append([]string{f.Name}, f.Aliases...) {
			if seen[name] {
				t.Errorf("%s is registered twice", name)
			}
			seen[name] = true
			_, err := ResolveFunction(name, nil)
			if err != nil && strings.Contains(err.Error(), "does not refer to any known function") {
				t.Errorf("registered function %s does not resolve: %v", name, err)
			}
		}
	}
	for _, name := range []string{"nosuchfunction", "externaldata", "sum"} {
		if _, err := ResolveFunction(name, nil); err == nil {
			t.Errorf("ResolveFunction(%q) succeeded; want an error", name)
		}
	}
}

func TestRegistryFamilies(t *testing.T) {
	fams := FunctionFamilies()
	for _, f := range Functions() {
		found := false
		for _, x := range fams {
			found = found || x == f.Family
		}
		if !found {
			t.Errorf("%s has family %q, which is not documented", f.Name, f.Family)
		}
	}
	if len(Aggregations()) < 30 {
		t.Errorf("got %d aggregations; want every summarize function", len(Aggregations()))
	}
	ops := Operators()
	var where, external bool
	for _, o := range ops {
		where = where || (o.Name == "where" && o.Parsed)
		external = external || (o.Name == "externaldata" && !o.Parsed)
	}
	if !where || !external {
		t.Errorf("Operators() = %v; want where (parsed) and externaldata (refused)", ops)
	}
}

// TestFunctionTypeErrors checks that the new functions refuse wrong
// argument types with a message naming the function.
func TestFunctionTypeErrors(t *testing.T) {
	s := &Const{V: StringValue("x")}
	l := &Const{V: LongValue(1)}
	for _, tc := range []struct {
		name string
		args []Scalar
		want string
	}{
		{"array_slice", []Scalar{s, l, l}, "function 'array_slice' expects a dynamic value as argument 1"},
		{"binary_and", []Scalar{s, l}, "function 'binary_and' expects an integer as argument 1"},
		{"startofmonth", []Scalar{s}, "function 'startofmonth' expects a datetime as argument 1"},
		{"bag_pack", []Scalar{l, s}, "function 'bag_pack' expects a string key as argument 1"},
		{"trim_start", []Scalar{&ColRef{Name: "c", T: s.Type()}, s}, "constant regular expression"},
		{"make_datetime", []Scalar{l}, "expects between 3 and 6 arguments"},
		{"percentile_tdigest", []Scalar{s, l}, "expects a dynamic value"},
	} {
		_, err := ResolveFunction(tc.name, tc.args)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: got %v; want an error containing %q", tc.name, err, tc.want)
		}
	}
}

func TestAllowedInTransform(t *testing.T) {
	for name, want := range map[string]bool{"hash_sha256": true, "parse_json": true, "iif": true, "replace_regex": true,
		"new_guid": false, "row_number": false, "series_fill_linear": false, "nosuch": false} {
		if got := AllowedInTransform(name); got != want {
			t.Errorf("AllowedInTransform(%q) = %v; want %v", name, got, want)
		}
	}
	for name := range transformFunctions {
		if _, ok := funcIndex[name]; !ok {
			t.Errorf("transform function %q is not in the registry", name)
		}
	}
}

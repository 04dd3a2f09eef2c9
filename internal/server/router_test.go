package server

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
)

func TestRouterCaseInsensitive(t *testing.T) {
	rt := newRouter(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(http.StatusNotFound)
	}))
	reg := func(pattern string, vars ...string) {
		t.Helper()
		if err := rt.handle(pattern, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			var parts []string
			for _, v := range vars {
				parts = append(parts, v+"="+r.PathValue(v))
			}
			fmt.Fprintf(w, "%s|%s|%s", r.Pattern, strings.Join(parts, ","), r.URL.Path)
		})); err != nil {
			t.Fatal(err)
		}
	}
	reg("GET /subscriptions/{subscriptionId}/resourceGroups/{resourceGroupName}", "subscriptionId", "resourceGroupName")
	reg("PUT /subscriptions/{sub}/resourceGroups/{rg}/providers/Microsoft.OperationalInsights/workspaces/{name}", "sub", "rg", "name")
	reg("POST /v1/workspaces/{workspaceId}/query", "workspaceId")
	reg("GET /files/{path...}", "path")
	reg("GET /exact/{$}")

	for _, tc := range []struct {
		method, path string
		want         string // body; "" means 404, "405" a method mismatch
	}{
		{"GET", "/subscriptions/ABC/resourceGroups/My-RG",
			"GET /subscriptions/{subscriptionId}/resourceGroups/{resourceGroupName}|subscriptionId=ABC,resourceGroupName=My-RG|/subscriptions/ABC/resourceGroups/My-RG"},
		{"GET", "/SUBSCRIPTIONS/abc/RESOURCEGROUPS/rg",
			"GET /subscriptions/{subscriptionId}/resourceGroups/{resourceGroupName}|subscriptionId=abc,resourceGroupName=rg|/SUBSCRIPTIONS/abc/RESOURCEGROUPS/rg"},
		{"PUT", "/subscriptions/s/resourcegroups/r/providers/microsoft.operationalinsights/WORKSPACES/WsName",
			"PUT /subscriptions/{sub}/resourceGroups/{rg}/providers/Microsoft.OperationalInsights/workspaces/{name}|sub=s,rg=r,name=WsName|/subscriptions/s/resourcegroups/r/providers/microsoft.operationalinsights/WORKSPACES/WsName"},
		{"POST", "/V1/Workspaces/1B2C/Query", "POST /v1/workspaces/{workspaceId}/query|workspaceId=1B2C|/V1/Workspaces/1B2C/Query"},
		{"GET", "/files/A/b%2FC/d", "GET /files/{path...}|path=A/b/C/d|/files/A/b/C/d"},
		{"GET", "/subscriptions/a%20b/resourceGroups/R", "GET /subscriptions/{subscriptionId}/resourceGroups/{resourceGroupName}|subscriptionId=a b,resourceGroupName=R|/subscriptions/a b/resourceGroups/R"},
		{"GET", "/Exact/", "GET /exact/{$}||/Exact/"},
		{"GET", "/exact/more", ""},
		{"DELETE", "/subscriptions/a/resourceGroups/b", "405"},
		{"GET", "/subscriptions/a/resourceGroups/b/", ""},     // not the registered path
		{"GET", "/subscriptions/a/../x/resourceGroups/b", ""}, // unclean path: never redirected
		{"GET", "/nothing", ""},
	} {
		r := httptest.NewRequest(tc.method, "https://localhost"+tc.path, nil)
		w := httptest.NewRecorder()
		rt.ServeHTTP(w, r)
		if tc.want == "405" {
			if w.Code != http.StatusMethodNotAllowed || w.Header().Get("Allow") != "GET, HEAD" ||
				w.Header().Get("x-ms-error-code") != "MethodNotAllowed" {
				t.Errorf("%s %s: %d Allow=%q %q; want 405 MethodNotAllowed, Allow: GET, HEAD",
					tc.method, tc.path, w.Code, w.Header().Get("Allow"), w.Body.String())
			}
			continue
		}
		if tc.want == "" {
			if w.Code != http.StatusNotFound {
				t.Errorf("%s %s: %d %q; want 404", tc.method, tc.path, w.Code, w.Body.String())
			}
			continue
		}
		if w.Code != 200 || w.Body.String() != tc.want {
			t.Errorf("%s %s:\n got %d %q\nwant 200 %q", tc.method, tc.path, w.Code, w.Body.String(), tc.want)
		}
	}
}

func TestRouterConflictsAreErrors(t *testing.T) {
	rt := newRouter(http.NotFoundHandler())
	h := http.NotFoundHandler()
	if err := rt.handle("GET /subscriptions/{sub}", h); err != nil {
		t.Fatal(err)
	}
	// Same path up to case: a conflict, reported as an error, not a panic.
	if err := rt.handle("GET /Subscriptions/{id}", h); err == nil {
		t.Fatal("conflicting registration accepted")
	}
	if err := rt.handle("no-slash", h); err == nil {
		t.Fatal("pattern without a leading slash accepted")
	}
}

func TestASCIILower(t *testing.T) {
	for in, want := range map[string]string{"": "", "abc": "abc", "AbC/DéF": "abc/déf", "%2F": "%2f", "ÄB": "Äb"} {
		if got := asciiLower(in); got != want || len(got) != len(in) {
			t.Errorf("asciiLower(%q) = %q; want %q with the same length", in, got, want)
		}
	}
}

// FuzzRouter feeds arbitrary request paths through the router: it must never
// panic, and a match must bind every wildcard to the segment the client sent.
func FuzzRouter(f *testing.F) {
	for _, s := range []string{
		"/subscriptions/ABC/resourceGroups/rg", "/SUBSCRIPTIONS/x/RESOURCEGROUPS/%2F", "/files/a/b%2Fc",
		"//", "/a/../b", "/%zz", "/subscriptions/%C3%A9/resourcegroups/x", "/files/", "",
	} {
		f.Add(s)
	}
	rt := newRouter(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(http.StatusNotFound) }))
	if err := rt.handle("GET /subscriptions/{sub}/resourceGroups/{rg}", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		parts := strings.Split(strings.TrimPrefix(r.URL.EscapedPath(), "/"), "/")
		if len(parts) != 4 || !strings.EqualFold(parts[0], "subscriptions") || !strings.EqualFold(parts[2], "resourcegroups") {
			panic("matched a path of another shape: " + r.URL.EscapedPath())
		}
		w.WriteHeader(http.StatusOK)
	})); err != nil {
		f.Fatal(err)
	}
	if err := rt.handle("GET /files/{path...}", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {})); err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, path string) {
		u, err := url.Parse("https://localhost" + path)
		if err != nil || u.Host != "localhost" {
			return
		}
		r := &http.Request{Method: http.MethodGet, URL: u, Host: u.Host, Header: http.Header{}}
		rt.ServeHTTP(httptest.NewRecorder(), r.WithContext(context.Background()))
		if validRequestID(path) && len(path) > 128 {
			t.Fatalf("validRequestID accepted %d characters", len(path))
		}
	})
}

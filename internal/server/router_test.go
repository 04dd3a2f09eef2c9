package server

import (
	"fmt"
	"net/http"
	"net/http/httptest"
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
		want         string // body; "" means 404
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
		{"DELETE", "/subscriptions/a/resourceGroups/b", ""},   // method mismatch
		{"GET", "/subscriptions/a/resourceGroups/b/", ""},     // not the registered path
		{"GET", "/subscriptions/a/../x/resourceGroups/b", ""}, // unclean path: never redirected
		{"GET", "/nothing", ""},
	} {
		r := httptest.NewRequest(tc.method, "https://localhost"+tc.path, nil)
		w := httptest.NewRecorder()
		rt.ServeHTTP(w, r)
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

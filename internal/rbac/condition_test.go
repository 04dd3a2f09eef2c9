package rbac_test

import (
	"errors"
	"strings"
	"testing"

	"custos/internal/kql"
	"custos/internal/rbac"
)

const (
	guardData = `!(ActionMatches{'Microsoft.OperationalInsights/workspaces/tables/data/read'})`
	tableAttr = `@Resource[Microsoft.OperationalInsights/workspaces/tables:name]`
	recAttr   = `@Resource[Microsoft.OperationalInsights/workspaces/tables/record:`
)

func TestConditionPredicate(t *testing.T) {
	tests := []struct {
		name  string
		cond  string
		act   rbac.Action
		table string
		ok    bool
		pred  string
	}{
		{"guard lets control actions through", "((" + guardData + ") OR (" + tableAttr + " StringEquals 'Heartbeat'))",
			rbac.ActionQueryRead, "", true, ""},
		{"table equals, matching table", "((" + guardData + ") OR (" + tableAttr + " StringEquals 'Heartbeat'))",
			rbac.ActionTableDataRead, "Heartbeat", true, ""},
		{"table equals is case-sensitive", "(" + guardData + ") OR (" + tableAttr + " StringEquals 'Heartbeat')",
			rbac.ActionTableDataRead, "heartbeat", false, ""},
		{"table equals ignore case", tableAttr + " StringEqualsIgnoreCase 'Heartbeat'",
			rbac.ActionTableDataRead, "HEARTBEAT", true, ""},
		{"table equals, other table", "(" + guardData + ") OR (" + tableAttr + " StringEquals 'Heartbeat')",
			rbac.ActionTableDataRead, "Syslog", false, ""},
		{"table unknown becomes Type test", tableAttr + " StringEquals 'Heartbeat'",
			rbac.ActionTableDataRead, "", true, `Type == "Heartbeat"`},
		{"permissive: all but listed tables", tableAttr + " ForAnyOfAllValues:StringNotEquals {'SigninLogs', 'SecurityEvent'}",
			rbac.ActionTableDataRead, "Heartbeat", true, ""},
		{"permissive: listed table denied", tableAttr + " ForAnyOfAllValues:StringNotEquals {'SigninLogs', 'SecurityEvent'}",
			rbac.ActionTableDataRead, "SecurityEvent", false, ""},
		{"permissive, table unknown", tableAttr + " ForAllOfAllValues:StringNotEquals {'SigninLogs', 'SecurityEvent'}",
			rbac.ActionTableDataRead, "", true, `Type !in ("SigninLogs", "SecurityEvent")`},
		{"row condition", "(" + guardData + ") OR (" + tableAttr + " StringEquals 'Heartbeat' AND " + recAttr + "Computer] StringEquals 'a')",
			rbac.ActionTableDataRead, "Heartbeat", true, `Computer == "a"`},
		{"row condition on other table denies", "(" + guardData + ") OR (" + tableAttr + " StringEquals 'Heartbeat' AND " + recAttr + "Computer] StringEquals 'a')",
			rbac.ActionTableDataRead, "Syslog", false, ""},
		{"row ignore case", recAttr + "Computer] StringEqualsIgnoreCase 'Web-1'", rbac.ActionTableDataRead, "T", true, `Computer =~ "Web-1"`},
		{"row not equals", recAttr + "Computer] StringNotEquals 'ceo-laptop'", rbac.ActionTableDataRead, "T", true, `Computer != "ceo-laptop"`},
		{"row not equals ignore case", recAttr + "Computer] StringNotEqualsIgnoreCase 'x'", rbac.ActionTableDataRead, "T", true, `Computer !~ "x"`},
		{"row like", recAttr + "SyslogMessage] StringLike 'error'", rbac.ActionTableDataRead, "T", true, `SyslogMessage has_cs "error"`},
		{"row like ignore case", recAttr + "SyslogMessage] StringLikeIgnoreCase 'error'", rbac.ActionTableDataRead, "T", true, `SyslogMessage has "error"`},
		{"row not like", recAttr + "SyslogMessage] StringNotLike 'secret'", rbac.ActionTableDataRead, "T", true, `SyslogMessage !has_cs "secret"`},
		{"row starts with", recAttr + "Computer] StringStartsWith 'web'", rbac.ActionTableDataRead, "T", true, `Computer startswith_cs "web"`},
		{"row starts with ic", recAttr + "Computer] StringStartsWithIgnoreCase 'web'", rbac.ActionTableDataRead, "T", true, `Computer startswith "web"`},
		{"row not starts with", recAttr + "Computer] StringNotStartsWith 'db'", rbac.ActionTableDataRead, "T", true, `Computer !startswith_cs "db"`},
		{"row in", recAttr + "Computer] ForAllOfAnyValues:StringEquals {'a', 'b'}", rbac.ActionTableDataRead, "T", true, `Computer in ("a", "b")`},
		{"row in ic", recAttr + "Computer] ForAnyOfAnyValues:StringEqualsIgnoreCase {'a', 'b'}", rbac.ActionTableDataRead, "T", true, `Computer in~ ("a", "b")`},
		{"row not in", recAttr + "Computer] ForAllOfAllValues:StringNotEquals {'a', 'b'}", rbac.ActionTableDataRead, "T", true, `Computer !in ("a", "b")`},
		{"row not in ic", recAttr + "Computer] ForAllOfAllValues:StringNotEqualsIgnoreCase {'a', 'b'}", rbac.ActionTableDataRead, "T", true, `Computer !in~ ("a", "b")`},
		{"row has_any", recAttr + "Computer] ForAnyOfAnyValues:StringLikeIgnoreCase {'a', 'b'}", rbac.ActionTableDataRead, "T", true, `Computer has_any ("a", "b")`},
		{"row any starts with", recAttr + "Computer] ForAnyOfAnyValues:StringStartsWith {'a', 'b'}", rbac.ActionTableDataRead, "T", true, `(Computer startswith_cs "a" or Computer startswith_cs "b")`},
		{"row set with one value", recAttr + "Computer] ForAnyOfAnyValues:StringEquals {'a'}", rbac.ActionTableDataRead, "T", true, `Computer == "a"`},
		{"and/or/not mixed", "!(" + recAttr + "Computer] StringEquals 'a') && (" + recAttr + "Level] StringEquals 'x' || " + recAttr + "Level] StringEquals 'y')",
			rbac.ActionTableDataRead, "T", true, `(not(Computer == "a") and (Level == "x" or Level == "y"))`},
		{"NOT keyword", "NOT " + recAttr + "Computer] StringEquals 'a'", rbac.ActionTableDataRead, "T", true, `not(Computer == "a")`},
		{"AND binds tighter than OR", tableAttr + " StringEquals 'A' OR " + tableAttr + " StringEquals 'B' AND " + recAttr + "C] StringEquals 'c'",
			rbac.ActionTableDataRead, "B", true, `C == "c"`},
		{"AND binds tighter than OR, first arm", tableAttr + " StringEquals 'A' OR " + tableAttr + " StringEquals 'B' AND " + recAttr + "C] StringEquals 'c'",
			rbac.ActionTableDataRead, "A", true, ""},
		{"table like", tableAttr + " StringLike 'Logs'", rbac.ActionTableDataRead, "Signin_Logs", true, ""},
		{"table starts with", tableAttr + " StringStartsWith 'Sec'", rbac.ActionTableDataRead, "SecurityEvent", true, ""},
		{"action match wildcard", "ActionMatches{'Microsoft.OperationalInsights/workspaces/*'}", rbac.ActionTableDataRead, "T", true, ""},
		{"action match miss", "ActionMatches{'Microsoft.Insights/Telemetry/Write'}", rbac.ActionTableDataRead, "T", false, ""},
		{"action set", "ActionMatches{'Microsoft.Insights/Telemetry/Write', 'Microsoft.OperationalInsights/workspaces/tables/data/read'}", rbac.ActionTableDataRead, "T", true, ""},
		{"newlines and case of keywords", "(\n (\n  " + guardData + "\n )\n or\n (\n  " + tableAttr + " stringequals 'T'\n )\n)", rbac.ActionTableDataRead, "T", true, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := rbac.ParseCondition(tt.cond)
			if err != nil {
				t.Fatalf("ParseCondition: %v", err)
			}
			pred, ok := c.Predicate(tt.act, tt.table)
			if ok != tt.ok || pred != tt.pred {
				t.Fatalf("Predicate = (%q, %v); want (%q, %v)", pred, ok, tt.pred, tt.ok)
			}
			if pred != "" {
				if _, err := kql.ParseExpr(pred); err != nil {
					t.Fatalf("predicate %q is not KQL: %v", pred, err)
				}
			}
		})
	}
}

func TestConditionErrors(t *testing.T) {
	tests := []struct{ cond, frag string }{
		{"", "empty"},
		{"   ", "empty"},
		{tableAttr, "unexpected end"},
		{tableAttr + " 'x'", "expected an operator"},
		{tableAttr + " StringEquals", "unexpected end"},
		{tableAttr + " StringEquals {'a','b'}", "takes one quoted value"},
		{tableAttr + " StringMatches 'a'", "not supported"},
		{tableAttr + " ForSomeValues:StringEquals {'a'}", "not supported"},
		{"@Request[Microsoft.Storage/x:y] StringEquals 'a'", "only @Resource"},
		{"@Resource[Microsoft.Storage/storageAccounts:name] StringEquals 'a'", "not supported"},
		{recAttr + "1bad] StringEquals 'a'", "not a column name"},
		{recAttr + "Computer] StringEquals 'a\"b'", "not allowed"},
		{recAttr + "Computer] StringEquals 'a b'", "not allowed"},
		{recAttr + "Computer] StringEquals 'a) or true or (x'", "not allowed"},
		{recAttr + "Computer] StringEquals 'unterminated", "unterminated string"},
		{"(" + tableAttr + " StringEquals 'a'", "unexpected end"},
		{"(" + tableAttr + " StringEquals 'a' 'b'", "expected ')'"},
		{tableAttr + " StringEquals 'a')", "unexpected ')'"},
		{tableAttr + " StringEquals 'a' AND", "unexpected end"},
		{"ActionMatches{}", "expected a quoted value"},
		{"ActionMatches{'*'}", "not an action"},
		{"SubOperationMatches{'x'}", "not supported"},
		{"Exists " + tableAttr, "unknown function"},
		{"true", "unknown function"},
		{strings.Repeat("(", 100) + tableAttr + " StringEquals 'a'" + strings.Repeat(")", 100), "nested too deeply"},
		{strings.Repeat("!", 100) + tableAttr + " StringEquals 'a'", "nested too deeply"},
		{strings.Repeat("x", 9000), "longer than"},
		{"@Resource[no end", "unterminated attribute"},
		{"#", "unexpected character"},
	}
	for _, tt := range tests {
		_, err := rbac.ParseCondition(tt.cond)
		var ce *rbac.ConditionError
		if !errors.As(err, &ce) || !errors.Is(err, rbac.ErrCondition) {
			t.Errorf("ParseCondition(%.60q) = %v; want a *ConditionError", tt.cond, err)
			continue
		}
		if !strings.Contains(err.Error(), tt.frag) {
			t.Errorf("ParseCondition(%.60q) = %v; want it to mention %q", tt.cond, err, tt.frag)
		}
		if ce.Pos < 0 || ce.Pos > len(tt.cond) {
			t.Errorf("ParseCondition(%.60q): position %d outside the text", tt.cond, ce.Pos)
		}
	}
}

// FuzzParseCondition: no panic on any input; every accepted condition yields
// predicates that are valid KQL for the table data action.
func FuzzParseCondition(f *testing.F) {
	for _, s := range []string{
		"((" + guardData + ") OR (" + tableAttr + " StringEquals 'Heartbeat'))",
		"(" + guardData + ") OR (" + tableAttr + " StringEquals 'Heartbeat' AND " + recAttr + "Computer] StringEquals 'a')",
		tableAttr + " ForAnyOfAllValues:StringNotEquals {'SigninLogs', 'SecurityEvent'}",
		recAttr + "Computer] ForAnyOfAnyValues:StringLikeIgnoreCase {'a', 'b'}",
		"!(" + recAttr + "C] StringStartsWith 'x') && " + recAttr + "D] StringNotLike 'y' || ActionMatches{'a/b'}",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, src string) {
		c, err := rbac.ParseCondition(src)
		if err != nil {
			var ce *rbac.ConditionError
			if !errors.As(err, &ce) {
				t.Fatalf("error %v is not a *ConditionError", err)
			}
			return
		}
		for _, table := range []string{"", "Heartbeat", "T_CL"} {
			pred, ok := c.Predicate(rbac.ActionTableDataRead, table)
			if ok && pred != "" {
				if _, err := kql.ParseExpr(pred); err != nil {
					t.Fatalf("condition %q gave predicate %q that does not parse: %v", src, pred, err)
				}
			}
			c.Predicate(rbac.ActionQueryRead, table)
		}
	})
}

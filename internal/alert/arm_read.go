package alert

import (
	"context"
	"net/http"

	"custos/internal/catalog"
)

// toWireFunc converts a catalog alert resource of one type to its ARM wire
// shape.
type toWireFunc[W any] func(ctx context.Context, res *catalog.AlertResource) (W, error)

// listResources returns the GET handler that lists the alert resources of
// one type in the path's subscription (and resource group, when the path
// names one), in the ARM list envelope.
func listResources[W any](s *Service, typ string, toWire toWireFunc[W]) handler {
	return func(w http.ResponseWriter, r *http.Request) error {
		all, err := s.cat.AlertResources(r.Context(), typ, r.PathValue("subscriptionId"), r.PathValue("resourceGroupName"))
		if err != nil {
			return err
		}
		out := list[W]{Value: make([]W, 0, len(all))}
		for i := range all {
			v, err := toWire(r.Context(), &all[i])
			if err != nil {
				return err
			}
			out.Value = append(out.Value, v)
		}
		writeJSON(w, http.StatusOK, "", out)
		return nil
	}
}

// getResource returns the GET handler of one alert resource of type typ,
// named by the path value nameParam, answered with its ETag.
func getResource[W any](s *Service, typ, nameParam string, toWire toWireFunc[W]) handler {
	return func(w http.ResponseWriter, r *http.Request) error {
		res, err := s.cat.AlertResource(r.Context(), typ, r.PathValue("subscriptionId"),
			r.PathValue("resourceGroupName"), r.PathValue(nameParam))
		if err != nil {
			return err
		}
		v, err := toWire(r.Context(), &res)
		if err != nil {
			return err
		}
		writeJSON(w, http.StatusOK, res.ETag, v)
		return nil
	}
}

// withoutContext adapts a conversion that needs no context.
func withoutContext[W any](f func(*catalog.AlertResource) (W, error)) toWireFunc[W] {
	return func(_ context.Context, res *catalog.AlertResource) (W, error) { return f(res) }
}

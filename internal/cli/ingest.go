package cli

import (
	"context"
	"errors"
	"fmt"
	"net/http"
)

// Upload sends one batch (a JSON array of records, at most MaxUploadBytes)
// to a DCR stream through the Azure SDK's Logs Ingestion client.
func (c *Client) Upload(ctx context.Context, ruleID, stream string, body []byte) error {
	if ruleID == "" || stream == "" {
		return errors.New("upload: a rule ID and a stream name are required")
	}
	if len(body) > MaxUploadBytes {
		return fmt.Errorf("upload: body is %d bytes; the limit is %d", len(body), MaxUploadBytes)
	}
	ic, err := c.ingestClient()
	if err != nil {
		return err
	}
	if _, err := ic.Upload(ctx, ruleID, stream, body, nil); err != nil {
		err = Explain(err)
		var ae *APIError
		if errors.As(err, &ae) && ae.StatusCode == http.StatusForbidden {
			return fmt.Errorf("%w\nsending logs needs the data action Microsoft.Insights/Telemetry/Write on the rule, which the Monitoring Metrics Publisher role grants; as in Azure, Owner and Contributor do not include data actions", err)
		}
		return err
	}
	return nil
}

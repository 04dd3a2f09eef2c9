package cli

import (
	"context"
	"errors"
	"fmt"
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
		return Explain(err)
	}
	return nil
}

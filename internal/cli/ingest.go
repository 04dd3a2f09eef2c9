package cli

import (
	"bytes"
	"compress/gzip"
	"context"
	"errors"
	"fmt"
	"net/http"

	ingestlogs "github.com/Azure/azure-sdk-for-go/sdk/monitor/ingestion/azlogs"
)

// UploadOptions are the optional parts of an upload.
type UploadOptions struct {
	// Gzip compresses the body (Content-Encoding: gzip). The 1 MB limit
	// applies to the uncompressed body as well, so it saves bandwidth only.
	Gzip bool
}

// Upload sends one batch (a JSON array of records, at most MaxUploadBytes)
// to a DCR stream through the Azure SDK's Logs Ingestion client.
func (c *Client) Upload(ctx context.Context, ruleID, stream string, body []byte, o UploadOptions) error {
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
	var opts *ingestlogs.UploadOptions
	if o.Gzip {
		var buf bytes.Buffer
		zw := gzip.NewWriter(&buf)
		if _, err := zw.Write(body); err != nil {
			return fmt.Errorf("compress: %w", err)
		}
		if err := zw.Close(); err != nil {
			return fmt.Errorf("compress: %w", err)
		}
		body = buf.Bytes()
		enc := "gzip"
		opts = &ingestlogs.UploadOptions{ContentEncoding: &enc}
	}
	if _, err := ic.Upload(ctx, ruleID, stream, body, opts); err != nil {
		err = Explain(err)
		var ae *APIError
		if errors.As(err, &ae) && ae.StatusCode == http.StatusForbidden {
			return fmt.Errorf("%w\nsending logs needs the data action Microsoft.Insights/Telemetry/Write on the rule, which the Monitoring Metrics Publisher role grants; as in Azure, Owner and Contributor do not include data actions", err)
		}
		return err
	}
	return nil
}

package ingest

import (
	"compress/gzip"
	"errors"
	"io"
	"net/http"
	"strings"

	"custos/internal/api"
)

// DefaultMaxBodyBytes is Azure's limit for one Logs Ingestion API call: 1 MB,
// applied to the compressed and to the uncompressed body alike.
const DefaultMaxBodyBytes = 1 << 20

// drainCapBytes bounds how much of an oversized body is read only to report
// its size in the error message.
const drainCapBytes = 32 << 20

func tooLarge(limit, provided int64) *Error {
	return errorf(api.KindTooLarge, codeTooLarge,
		"Maximum allowed content length: %d bytes (%s). Provided content length: %d bytes.", limit, humanLimit(limit), provided)
}

func humanLimit(n int64) string {
	if n%(1<<20) == 0 {
		return itoa(n>>20) + " MB"
	}
	if n%(1<<10) == 0 {
		return itoa(n>>10) + " KB"
	}
	return itoa(n) + " bytes"
}

func itoa(n int64) string {
	if n == 0 {
		return "0"
	}
	var b [20]byte
	i := len(b)
	for n > 0 {
		i--
		b[i] = byte('0' + n%10)
		n /= 10
	}
	return string(b[i:])
}

// countingReader counts bytes and fails with ContentLengthLimitExceeded once
// more than limit bytes have been read.
type countingReader struct {
	r     io.Reader
	n     int64
	limit int64
	// declared is the Content-Length to report for the compressed body, or -1.
	declared int64
}

func (c *countingReader) Read(p []byte) (int, error) {
	if c.n > c.limit {
		return 0, c.overflow()
	}
	n, err := c.r.Read(p)
	c.n += int64(n)
	if c.n > c.limit {
		return n, c.overflow()
	}
	return n, err
}

func (c *countingReader) overflow() *Error {
	if c.declared > c.limit {
		return tooLarge(c.limit, c.declared)
	}
	// Measure the rest, up to a cap, so the message reports the provided size.
	rest, _ := io.Copy(io.Discard, io.LimitReader(c.r, drainCapBytes))
	c.n += rest
	c.r = eofReader{}
	return tooLarge(c.limit, c.n)
}

type eofReader struct{}

func (eofReader) Read([]byte) (int, error) { return 0, io.EOF }

// bodyReader returns the request body to decode: size-limited both before
// and after decompression. The returned close function releases the gzip reader.
// stats reports the bytes read so far (compressed, uncompressed).
func bodyReader(r *http.Request, limit int64) (io.Reader, func() (wire, plain int64), error) {
	if r.ContentLength > limit {
		return nil, nil, tooLarge(limit, r.ContentLength)
	}
	wire := &countingReader{r: r.Body, limit: limit, declared: r.ContentLength}
	enc := strings.ToLower(strings.TrimSpace(r.Header.Get("Content-Encoding")))
	switch enc {
	case "", "identity":
		return wire, func() (int64, int64) { return wire.n, wire.n }, nil
	case "gzip", "x-gzip":
		zr, err := gzip.NewReader(wire)
		if err != nil {
			var ie *Error
			if errors.As(err, &ie) {
				return nil, nil, ie
			}
			return nil, nil, errorf(api.KindInvalid, codeInvalidContent, "The request body is not valid gzip data: %v.", err)
		}
		zr.Multistream(true)
		plain := &countingReader{r: gzipErrReader{zr}, limit: limit, declared: -1}
		return plain, func() (int64, int64) { return wire.n, plain.n }, nil
	default:
		return nil, nil, errorf(api.KindInvalid, codeUnsupportedEnc, "Content-Encoding %q is not supported; use gzip or none.", truncateUTF8(enc, 64))
	}
}

// gzipErrReader turns gzip format errors into client errors.
type gzipErrReader struct{ zr *gzip.Reader }

func (g gzipErrReader) Read(p []byte) (int, error) {
	n, err := g.zr.Read(p)
	if err != nil && err != io.EOF {
		var ie *Error
		if errors.As(err, &ie) {
			return n, ie
		}
		return n, errorf(api.KindInvalid, codeInvalidContent, "The request body is not valid gzip data: %v.", err)
	}
	return n, err
}

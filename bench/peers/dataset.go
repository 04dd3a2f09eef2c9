package main

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"os"
	"sync"
	"sync/atomic"

	"custos/bench/logdata"
)

// dataset is the one seeded dataset every system loads: the records of
// bench/logdata, in the shape each ingestion path takes.
type dataset struct {
	gen       *logdata.Generator
	rows      int
	batchRows int
	rawBytes  atomic.Int64 // JSON bytes of the records, counted once by jsonFile
}

// timeLen is the length of the generator's TimeGenerated value
// ("2006-01-02T15:04:05.000Z").
const timeLen = len("2006-01-02T15:04:05.000Z")

const timePrefix = `{"TimeGenerated":"`

// jsonLines returns records [first, first+n) as newline-delimited JSON.
// With sqlTime, TimeGenerated is "2006-01-02 15:04:05" (seconds), which
// ClickHouse 18's DateTime parser takes.
func (d *dataset) jsonLines(first, n int, sqlTime bool) []byte {
	arr, _ := d.gen.AppendBatch(nil, first, n)
	arr = arr[1 : len(arr)-1] // strip [ ]
	// Records are flat objects whose strings hold no braces: "},{" only
	// ever separates two records.
	lines := bytes.ReplaceAll(arr, []byte("},{"), []byte("}\n{"))
	lines = append(lines, '\n')
	if !sqlTime {
		return lines
	}
	out := make([]byte, 0, len(lines))
	for len(lines) > 0 {
		i := bytes.IndexByte(lines, '\n')
		rec := lines[:i+1]
		lines = lines[i+1:]
		if bytes.HasPrefix(rec, []byte(timePrefix)) && len(rec) > len(timePrefix)+timeLen {
			ts := rec[len(timePrefix) : len(timePrefix)+timeLen]
			out = append(out, timePrefix...)
			out = append(out, ts[:10]...)
			out = append(out, ' ')
			out = append(out, ts[11:19]...)
			out = append(out, rec[len(timePrefix)+timeLen:]...)
			continue
		}
		out = append(out, rec...)
	}
	return out
}

// each calls fn for every batch of records from clients goroutines and
// returns the first error.
func (d *dataset) each(ctx context.Context, clients int, fn func(ctx context.Context, first, n int) error) error {
	var next atomic.Int64
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var wg sync.WaitGroup
	var once sync.Once
	var firstErr error
	for range clients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for ctx.Err() == nil {
				first := int(next.Add(int64(d.batchRows))) - d.batchRows
				if first >= d.rows {
					return
				}
				n := min(d.batchRows, d.rows-first)
				if err := fn(ctx, first, n); err != nil {
					once.Do(func() { firstErr = err; cancel() })
					return
				}
			}
		}()
	}
	wg.Wait()
	return firstErr
}

// jsonFile writes the whole dataset as JSON lines to path (for DuckDB's
// file ingestion) and counts the raw bytes.
func (d *dataset) jsonFile(path string) error {
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	w := bufio.NewWriterSize(f, 1<<20)
	var total int64
	for first := 0; first < d.rows; first += d.batchRows {
		b := d.jsonLines(first, min(d.batchRows, d.rows-first), false)
		total += int64(len(b))
		if _, err := w.Write(b); err != nil {
			f.Close()
			return err
		}
	}
	if err := w.Flush(); err != nil {
		f.Close()
		return err
	}
	d.rawBytes.Store(total)
	if err := f.Close(); err != nil {
		return fmt.Errorf("write dataset: %w", err)
	}
	return nil
}

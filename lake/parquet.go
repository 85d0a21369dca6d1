package lake

import (
	"bytes"
	"errors"
	"fmt"
	"io"

	"github.com/acme/pipeline/event"
	"github.com/parquet-go/parquet-go"
	"github.com/parquet-go/parquet-go/compress/zstd"
)

// DefaultRowGroupRows is the row-group size of silver files: large enough for
// good compression and fast scans, small enough that a writer buffers tens of
// megabytes, not the whole file (parquet-go's default is one row group).
const DefaultRowGroupRows = 100_000

// ParquetContentType is the content type of silver objects.
const ParquetContentType = "application/vnd.apache.parquet"

// RowWriter writes event.Rows as a silver Parquet file (zstd, row groups of
// at most RowGroupRows rows). Close must be called to finish the file.
type RowWriter struct {
	w    *parquet.GenericWriter[event.Row]
	rows int64
}

// NewRowWriter starts a silver Parquet file on w. rowGroupRows ≤ 0 means
// DefaultRowGroupRows.
func NewRowWriter(w io.Writer, rowGroupRows int64) *RowWriter {
	if rowGroupRows <= 0 {
		rowGroupRows = DefaultRowGroupRows
	}
	return &RowWriter{w: parquet.NewGenericWriter[event.Row](w,
		parquet.Compression(&zstd.Codec{Level: zstd.SpeedFastest}),
		parquet.MaxRowsPerRowGroup(rowGroupRows),
		parquet.CreatedBy("github.com/acme/pipeline", "", ""),
	)}
}

// Write appends rows.
func (w *RowWriter) Write(rows []event.Row) error {
	n, err := w.w.Write(rows)
	w.rows += int64(n)
	if err != nil {
		return fmt.Errorf("write parquet rows: %w", err)
	}
	return nil
}

// Rows is the number of rows written so far.
func (w *RowWriter) Rows() int64 { return w.rows }

// Close flushes the last row group and writes the footer.
func (w *RowWriter) Close() error {
	if err := w.w.Close(); err != nil {
		return fmt.Errorf("close parquet file: %w", err)
	}
	return nil
}

// EncodeRows encodes rows as one silver Parquet file in memory.
func EncodeRows(rows []event.Row, rowGroupRows int64) ([]byte, error) {
	var buf bytes.Buffer
	w := NewRowWriter(&buf, rowGroupRows)
	if err := w.Write(rows); err != nil {
		return nil, err
	}
	if err := w.Close(); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

// RowReader reads the rows of a silver Parquet file in batches.
type RowReader struct {
	r *parquet.GenericReader[event.Row]
}

// NewRowReader opens a silver Parquet file of size bytes.
func NewRowReader(r io.ReaderAt, size int64) (*RowReader, error) {
	f, err := parquet.OpenFile(r, size)
	if err != nil {
		return nil, fmt.Errorf("open parquet file: %w", err)
	}
	return &RowReader{r: parquet.NewGenericReader[event.Row](f)}, nil
}

// NumRows is the number of rows in the file.
func (r *RowReader) NumRows() int64 { return r.r.NumRows() }

// Read reads up to len(rows) rows; it returns io.EOF after the last one.
func (r *RowReader) Read(rows []event.Row) (int, error) {
	n, err := r.r.Read(rows)
	if err != nil && !errors.Is(err, io.EOF) {
		return n, fmt.Errorf("read parquet rows: %w", err)
	}
	return n, err
}

// Close releases the reader.
func (r *RowReader) Close() error { return r.r.Close() }

// DecodeRows decodes a whole silver Parquet file held in memory.
func DecodeRows(data []byte) ([]event.Row, error) {
	rr, err := NewRowReader(bytes.NewReader(data), int64(len(data)))
	if err != nil {
		return nil, err
	}
	defer rr.Close()
	out := make([]event.Row, rr.NumRows())
	n := 0
	for n < len(out) {
		k, err := rr.Read(out[n:])
		n += k
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return nil, err
		}
	}
	if n != len(out) {
		return nil, fmt.Errorf("read parquet rows: got %d of %d", n, len(out))
	}
	return out, nil
}

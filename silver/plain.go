package silver

import (
	"fmt"
	"io"

	"github.com/apache/arrow-go/v18/parquet"
	"github.com/apache/arrow-go/v18/parquet/compress"
	"github.com/apache/arrow-go/v18/parquet/pqarrow"

	"github.com/acme/pipeline/event"
)

// WritePlainParquet writes rows as one Parquet file in silver.events'
// columns, zstd, with arrow-go's writer alone: no Iceberg, no partitioning
// by hour, no manifests, no catalog. It is the baseline the benchmarks put
// beside the stream's appends to silver.events.
func WritePlainParquet(w io.Writer, rows []event.Row) error {
	rec := toArrow(rows)
	defer rec.Release()
	props := parquet.NewWriterProperties(parquet.WithCompression(compress.Codecs.Zstd))
	fw, err := pqarrow.NewFileWriter(arrowSchema(), w, props, pqarrow.DefaultWriterProps())
	if err != nil {
		return fmt.Errorf("plain parquet writer: %w", err)
	}
	if err := fw.Write(rec); err != nil {
		fw.Close()
		return fmt.Errorf("plain parquet write: %w", err)
	}
	return fw.Close()
}

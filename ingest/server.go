// Package ingest is the event API: the pipeline's ingress. POST /v1/events
// takes one JSON event, a JSON array of events, or NDJSON, validates every
// event with package event, and answers 202 only once Kafka has acknowledged
// every event of the request (acks=all). A request is all-or-nothing: one
// invalid event refuses it with 400 and the full list of errors.
//
// On the topic, a record's value is the event as JSON with event_id and
// received_at filled in; its key is user_id, else event_id, and its
// partition is murmur2(key) modulo the partition count, as Java clients and
// librdkafka's murmur2 partitioner choose it, so that other producers keyed
// by user land a user's events on the same partition. Its headers are
// traceparent (and tracestate, baggage when present: the W3C context of the
// request's producer span), received-at (RFC 3339, UTC) and api-key-name.
//
// Besides the events route the server answers GET /healthz (the process is
// up) and GET /readyz (Kafka answers metadata for the topic); GET /metrics
// (Prometheus text, from package telemetry) and GET /status are the
// operators', on Config.AdminAddr when it is set.
//
// A record may be written even though its request was refused with 503 (a
// produce that timed out can still complete, and a batch can fail on some
// partitions only), so a client that retries should send its own event_id
// values: downstream deduplicates on event_id. Kafka never holds a record
// for a request answered with 2xx that it has not acknowledged.
package ingest

import (
	"context"
	"crypto/sha256"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/segmentio/kafka-go"
	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/trace"

	"github.com/acme/pipeline/internal/telemetry"
)

const (
	// readyTimeout bounds the Kafka metadata request behind /readyz.
	readyTimeout = 2 * time.Second
	// readyCacheFor spares Kafka from probes arriving in bursts.
	readyCacheFor = time.Second
	// defaultRecordBytes is Kafka's default max.message.bytes (1,048,588)
	// less the 61-byte record batch header: the writer's batches, and so
	// each record, stay within it.
	defaultRecordBytes = 1048588 - 61
)

// Server is the event API. Build it with New, serve Handler yourself or call
// Run, and Close it when done.
type Server struct {
	cfg     Config
	log     *slog.Logger
	writer  *kafka.Writer
	keys    []apiKey
	sem     chan struct{}
	m       *metrics
	tracer  trace.Tracer
	handler http.Handler
	admin   *http.ServeMux // the operators' routes, when Config.AdminAddr is set
	cert    *tls.Certificate
	started time.Time

	maxRecordBytes int64
	draining       atomic.Bool
	accepted       atomic.Int64 // events, for the status page
	refused        atomic.Int64 // requests, for the status page

	readyMu  sync.Mutex
	readyAt  time.Time
	readyErr error

	srvMu     sync.Mutex
	srv       *http.Server
	closeOnce sync.Once
	closeErr  error
}

type apiKey struct {
	name string
	sum  [sha256.Size]byte
}

// New validates cfg (after applying defaults), loads the TLS key pair if one
// is configured, and builds the Kafka writer. It does not contact Kafka:
// /readyz reports whether Kafka answers. A nil log discards logs.
func New(cfg Config, log *slog.Logger) (*Server, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	cfg = cfg.withDefaults()
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	s := &Server{
		cfg:     cfg,
		log:     log,
		sem:     make(chan struct{}, cfg.MaxInFlight),
		tracer:  otel.Tracer(instrumentationName),
		started: time.Now(),
	}
	if cfg.TLSCertFile != "" {
		cert, err := tls.LoadX509KeyPair(cfg.TLSCertFile, cfg.TLSKeyFile)
		if err != nil {
			return nil, fmt.Errorf("ingest: TLSCertFile/TLSKeyFile: %w", err)
		}
		s.cert = &cert
	}
	for name, secret := range cfg.APIKeys {
		s.keys = append(s.keys, apiKey{name: name, sum: sha256.Sum256([]byte(secret))})
	}
	m, err := newMetrics()
	if err != nil {
		return nil, fmt.Errorf("ingest: metrics: %w", err)
	}
	s.m = m

	s.maxRecordBytes = defaultRecordBytes
	if cfg.MaxEventBytes > DefaultMaxEventBytes {
		s.maxRecordBytes = cfg.MaxEventBytes + 64<<10
	}
	if s.writer, err = newWriter(cfg, s.maxRecordBytes, log); err != nil {
		return nil, fmt.Errorf("ingest: %w", err)
	}

	mux := http.NewServeMux()
	mux.Handle("POST /v1/events", m.instrument("/v1/events", http.HandlerFunc(s.handleEvents)))
	mux.Handle("GET /healthz", m.instrument("/healthz", http.HandlerFunc(s.handleHealthz)))
	mux.Handle("GET /readyz", m.instrument("/readyz", http.HandlerFunc(s.handleReadyz)))
	// The operators' pages: on their own listener when AdminAddr is set.
	admin := mux
	if cfg.AdminAddr != "" {
		admin = http.NewServeMux()
		s.admin = admin
		if cfg.Profile {
			telemetry.HandleProfiles(admin)
		}
	}
	admin.Handle("GET /metrics", telemetry.MetricsHandler())
	status := cfg.Status
	if status == nil {
		status = http.HandlerFunc(s.handleStatus)
	}
	admin.Handle("GET /status", m.instrument("/status", status))
	admin.Handle("GET /{$}", http.RedirectHandler("/status", http.StatusFound))
	s.handler = mux
	return s, nil
}

// newWriter builds the synchronous Kafka writer. Batching: each partition
// sends one produce request at a time, holding whatever arrived meanwhile
// (from every concurrent request) up to maxRecordBytes per batch; a batch
// that is not full goes out after BatchTimeout (1 ms), the latency floor of
// a small request.
func newWriter(cfg Config, maxRecordBytes int64, log *slog.Logger) (*kafka.Writer, error) {
	transport, err := cfg.Kafka.Transport(&kafka.Transport{
		DialTimeout: min(cfg.ProduceTimeout, 5*time.Second),
		ClientID:    "pipeline-api",
	})
	if err != nil {
		return nil, err
	}
	return &kafka.Writer{
		Addr:  kafka.TCP(cfg.Brokers...),
		Topic: cfg.Topic,
		// Java-compatible murmur2 on the key (never nil here).
		Balancer:        kafka.Murmur2Balancer{Consistent: true},
		RequiredAcks:    kafka.RequireAll,
		MaxAttempts:     3,
		WriteBackoffMin: 50 * time.Millisecond,
		WriteBackoffMax: 500 * time.Millisecond,
		BatchSize:       250,
		BatchBytes:      maxRecordBytes,
		BatchTimeout:    time.Millisecond,
		ReadTimeout:     cfg.ProduceTimeout,
		WriteTimeout:    cfg.ProduceTimeout,
		Transport:       transport,
		ErrorLogger: kafka.LoggerFunc(func(msg string, args ...any) {
			log.Debug("kafka writer: " + fmt.Sprintf(msg, args...))
		}),
	}, nil
}

// AdminHandler returns the operators' routes (/status, /metrics) when
// Config.AdminAddr is set, else nil (they are in Handler).
func (s *Server) AdminHandler() http.Handler {
	if s.admin == nil {
		return nil
	}
	return s.admin
}

// Handler returns the API's routes, for use without Run (tests, or a
// server of the caller's own).
func (s *Server) Handler() http.Handler { return s.handler }

// Run listens on Config.Addr and serves until ctx is done, over TLS when a
// certificate and key are configured. When ctx is done it stops accepting
// connections, turns /readyz to 503, and waits (up to ProduceTimeout + 30s)
// for in-flight requests to finish before returning nil. Call Close after.
func (s *Server) Run(ctx context.Context) error {
	ln, err := net.Listen("tcp", s.cfg.Addr)
	if err != nil {
		return fmt.Errorf("ingest: listen on %s: %w", s.cfg.Addr, err)
	}
	if s.admin != nil {
		stop, err := s.serveAdmin()
		if err != nil {
			ln.Close()
			return err
		}
		defer stop()
	}
	return s.Serve(ctx, ln)
}

// serveAdmin serves the operators' routes on AdminAddr, in plain HTTP (a
// loopback or cluster-internal address: Prometheus and the people on call
// reach it, the Ingress does not), until stop.
func (s *Server) serveAdmin() (stop func(), err error) {
	ln, err := net.Listen("tcp", s.cfg.AdminAddr)
	if err != nil {
		return nil, fmt.Errorf("ingest: listen on the admin address %s: %w", s.cfg.AdminAddr, err)
	}
	srv := &http.Server{Handler: s.admin, ReadHeaderTimeout: 10 * time.Second, ReadTimeout: 30 * time.Second,
		WriteTimeout: 30 * time.Second, IdleTimeout: 2 * time.Minute, MaxHeaderBytes: 64 << 10,
		ErrorLog: slog.NewLogLogger(s.log.Handler(), slog.LevelDebug)}
	s.log.Info("operators' listener (status page, metrics)", "addr", ln.Addr().String(),
		"status", "http://"+ln.Addr().String()+"/status", "metrics", "http://"+ln.Addr().String()+"/metrics")
	go func() {
		if err := srv.Serve(ln); !errors.Is(err, http.ErrServerClosed) {
			s.log.Error("operators' listener stopped: /status and /metrics are down, the events route is not", "addr", s.cfg.AdminAddr, "error", err)
		}
	}()
	return func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = srv.Shutdown(ctx)
	}, nil
}

// Serve is Run on a listener of the caller's (Serve closes it).
func (s *Server) Serve(ctx context.Context, ln net.Listener) error {
	srv := &http.Server{
		Handler:           s.handler,
		ReadHeaderTimeout: 10 * time.Second,
		ReadTimeout:       time.Minute,
		WriteTimeout:      time.Minute + s.cfg.ProduceTimeout,
		IdleTimeout:       2 * time.Minute,
		MaxHeaderBytes:    64 << 10,
		ErrorLog:          slog.NewLogLogger(s.log.Handler(), slog.LevelDebug),
		BaseContext:       func(net.Listener) context.Context { return context.WithoutCancel(ctx) },
	}
	if s.cert != nil {
		srv.TLSConfig = &tls.Config{MinVersion: tls.VersionTLS12, Certificates: []tls.Certificate{*s.cert}}
	}
	s.srvMu.Lock()
	if s.srv != nil {
		s.srvMu.Unlock()
		ln.Close()
		return errors.New("ingest: server is already running")
	}
	s.srv = srv
	s.srvMu.Unlock()

	scheme := "http"
	if s.cert != nil {
		scheme = "https"
	}
	s.log.Info("event API listening", "addr", ln.Addr().String(), "scheme", scheme, "topic", s.cfg.Topic, "brokers", s.cfg.Brokers)
	errc := make(chan error, 1)
	go func() {
		if s.cert != nil {
			errc <- srv.ServeTLS(ln, "", "")
		} else {
			errc <- srv.Serve(ln)
		}
	}()
	select {
	case err := <-errc:
		if errors.Is(err, http.ErrServerClosed) {
			return nil
		}
		return fmt.Errorf("ingest: serve: %w", err)
	case <-ctx.Done():
	}
	s.draining.Store(true)
	s.log.Info("event API shutting down: finishing in-flight requests")
	sctx, cancel := context.WithTimeout(context.Background(), s.cfg.ProduceTimeout+30*time.Second)
	defer cancel()
	err := srv.Shutdown(sctx)
	<-errc
	if err != nil {
		return fmt.Errorf("ingest: shutdown: %w", err)
	}
	s.log.Info("event API stopped")
	return nil
}

// Close stops a running server at once (without waiting for in-flight
// requests: cancel Run's context for that) and closes the Kafka writer. It
// is safe to call more than once.
func (s *Server) Close() error {
	s.closeOnce.Do(func() {
		s.draining.Store(true)
		s.srvMu.Lock()
		srv := s.srv
		s.srvMu.Unlock()
		var errs []error
		if srv != nil {
			errs = append(errs, srv.Close())
		}
		errs = append(errs, s.writer.Close())
		s.closeErr = errors.Join(errs...)
	})
	return s.closeErr
}

func (s *Server) handleHealthz(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	fmt.Fprintln(w, "ok")
}

func (s *Server) handleReadyz(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	if s.draining.Load() {
		w.WriteHeader(http.StatusServiceUnavailable)
		fmt.Fprintln(w, "shutting down")
		return
	}
	if err := s.kafkaReady(r.Context()); err != nil {
		w.WriteHeader(http.StatusServiceUnavailable)
		fmt.Fprintf(w, "kafka: %v\n", err)
		return
	}
	fmt.Fprintln(w, "ok")
}

// kafkaReady asks Kafka for the topic's metadata, at most once a second.
func (s *Server) kafkaReady(ctx context.Context) error {
	s.readyMu.Lock()
	defer s.readyMu.Unlock()
	if !s.readyAt.IsZero() && time.Since(s.readyAt) < readyCacheFor {
		return s.readyErr
	}
	s.readyErr = s.checkKafka(ctx)
	s.readyAt = time.Now()
	return s.readyErr
}

// checkKafka sends a fresh metadata request for the topic (the writer's
// transport answers metadata from a cache that outlives a broker) and
// requires every partition to have a leader.
func (s *Server) checkKafka(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, readyTimeout)
	defer cancel()
	t, err := s.cfg.Kafka.Transport(&kafka.Transport{DialTimeout: readyTimeout, ClientID: "pipeline-api-readyz", MetadataTopics: []string{s.cfg.Topic}})
	if err != nil {
		return err
	}
	defer t.CloseIdleConnections()
	c := &kafka.Client{Addr: kafka.TCP(s.cfg.Brokers...), Transport: t, Timeout: readyTimeout}
	md, err := c.Metadata(ctx, &kafka.MetadataRequest{Topics: []string{s.cfg.Topic}})
	if err != nil {
		if ctx.Err() != nil {
			return s.cfg.Kafka.Explain(fmt.Errorf("no metadata from %v within %s: %w", s.cfg.Brokers, readyTimeout, context.DeadlineExceeded))
		}
		return s.cfg.Kafka.Explain(err)
	}
	for _, t := range md.Topics {
		if t.Name != s.cfg.Topic {
			continue
		}
		if t.Error != nil {
			return fmt.Errorf("topic %s: %w", t.Name, t.Error)
		}
		if len(t.Partitions) == 0 {
			return fmt.Errorf("topic %s has no partitions", t.Name)
		}
		for _, p := range t.Partitions {
			if p.Error != nil {
				return fmt.Errorf("topic %s partition %d: %w", t.Name, p.ID, p.Error)
			}
		}
		return nil
	}
	return fmt.Errorf("topic %s does not exist", s.cfg.Topic)
}

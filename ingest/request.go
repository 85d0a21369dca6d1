package ingest

import (
	"bytes"
	"compress/gzip"
	"crypto/sha256"
	"crypto/subtle"
	"errors"
	"io"
	"mime"
	"net/http"
	"strings"
	"unicode/utf8"
)

// The checks of a request before its events are read: who sends it, in
// which format, and a body within the limits.

// authenticate finds the key whose secret is the bearer token. It compares
// SHA-256 digests in constant time against every key, so neither the
// secrets' contents nor their lengths leak through timing.
func (s *Server) authenticate(r *http.Request) (string, outcome, bool) {
	h := r.Header.Get("Authorization")
	if h == "" {
		return "", refuse(http.StatusUnauthorized, "unauthorized", "missing API key: send the header Authorization: Bearer <key>"), false
	}
	scheme, token, _ := strings.Cut(h, " ")
	token = strings.TrimSpace(token)
	if !strings.EqualFold(scheme, "Bearer") || token == "" {
		return "", refuse(http.StatusUnauthorized, "unauthorized", "the Authorization header must be Bearer <key>"), false
	}
	sum := sha256.Sum256([]byte(token))
	name := ""
	for _, k := range s.keys {
		if subtle.ConstantTimeCompare(sum[:], k.sum[:]) == 1 {
			name = k.name
		}
	}
	if name == "" {
		return "", refuse(http.StatusUnauthorized, "unauthorized", "invalid API key"), false
	}
	return name, outcome{}, true
}

// requestFormat reads Content-Type and Content-Encoding. No Content-Type
// means JSON.
func requestFormat(r *http.Request) (bodyFormat, outcome, bool) {
	unsupported := func(format string, args ...any) (bodyFormat, outcome, bool) {
		return 0, refuse(http.StatusUnsupportedMediaType, "unsupported_media_type", format, args...), false
	}
	switch enc := strings.ToLower(strings.TrimSpace(r.Header.Get("Content-Encoding"))); enc {
	case "", "identity", "gzip":
	default:
		return unsupported("Content-Encoding %q is not supported: send gzip or no encoding", truncate(enc, 40))
	}
	ct := r.Header.Get("Content-Type")
	if ct == "" {
		return formatJSON, outcome{}, true
	}
	mt, params, err := mime.ParseMediaType(ct)
	if err != nil {
		return unsupported("Content-Type %q cannot be parsed: send application/json or application/x-ndjson", truncate(ct, 80))
	}
	if cs, ok := params["charset"]; ok && !strings.EqualFold(cs, "utf-8") && !strings.EqualFold(cs, "utf8") {
		return unsupported("charset %q is not supported: send UTF-8", truncate(cs, 40))
	}
	switch mt {
	case "application/json":
		return formatJSON, outcome{}, true
	case "application/x-ndjson", "application/ndjson":
		return formatNDJSON, outcome{}, true
	default:
		return unsupported("Content-Type %s is not supported: send application/json (one event or an array of events) or application/x-ndjson (one event per line)", truncate(mt, 80))
	}
}

// readBody reads the (possibly gzip-compressed) body into buf, refusing
// bodies over MaxBodyBytes before or after decompression.
func (s *Server) readBody(w http.ResponseWriter, r *http.Request, buf *bytes.Buffer) (outcome, bool) {
	limit := s.cfg.MaxBodyBytes
	tooLarge := func() (outcome, bool) {
		return refuse(http.StatusRequestEntityTooLarge, "body_too_large",
			"request body is larger than the limit of %d bytes: send fewer events per request", limit), false
	}
	var rd io.Reader = http.MaxBytesReader(w, r.Body, limit)
	if strings.EqualFold(strings.TrimSpace(r.Header.Get("Content-Encoding")), "gzip") {
		zr, err := gzip.NewReader(rd)
		if err != nil {
			var mbe *http.MaxBytesError
			if errors.As(err, &mbe) {
				return tooLarge()
			}
			return refuse(http.StatusBadRequest, "bad_request", "body is not valid gzip: %v", err), false
		}
		defer zr.Close()
		rd = io.LimitReader(zr, limit+1)
	}
	if r.ContentLength > 0 && r.ContentLength <= limit {
		buf.Grow(int(r.ContentLength))
	}
	if _, err := buf.ReadFrom(rd); err != nil {
		var mbe *http.MaxBytesError
		switch {
		case errors.As(err, &mbe):
			return tooLarge()
		case strings.EqualFold(strings.TrimSpace(r.Header.Get("Content-Encoding")), "gzip"):
			return refuse(http.StatusBadRequest, "bad_request", "body is not valid gzip: %v", err), false
		default:
			return refuse(http.StatusBadRequest, "bad_request", "reading the request body: %v", err), false
		}
	}
	if int64(buf.Len()) > limit {
		return tooLarge()
	}
	return outcome{}, true
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n] + "…"
}

package event

import (
	"bytes"
	"fmt"

	"github.com/acme/pipeline/internal/jsonscan"
)

// Limits on what properties hold. gold.events.properties is a PostgreSQL
// jsonb column, and a value jsonb refuses makes the whole COPY into gold
// fail: one such record used to stop its stream shard (issue 13). Decode
// refuses these values, so the API answers 400 and the stream quarantines a
// record that another producer wrote straight to the topic. The limits were
// found against PostgreSQL 15 and are checked there by
// TestLimitsFitPostgreSQL (in ingest, through the API and the topic).
const (
	// MaxPropertiesDepth is how deeply properties may nest objects and
	// arrays, counting properties itself: {"a":[1]} is 2 deep. PostgreSQL
	// 15's parser runs out of stack (max_stack_depth 2MB) at about 13,090 nested
	// objects or 14,544 arrays; 64 keeps far from that in every function
	// and tool that walks a value recursively.
	MaxPropertiesDepth = 64
	// MaxNumberIntDigits is how many digits a number may have before the
	// decimal point once its exponent is applied: 1e308 has 309. Every
	// float64 fits. PostgreSQL's numeric holds 131,072 but prints them all,
	// so 1e131071 would come back from every query, dump and backfill as
	// 131 kB of text.
	MaxNumberIntDigits = 309
	// MaxNumberFracDigits is how many digits a number may have after the
	// decimal point as PostgreSQL counts them: the written ones (trailing
	// zeros too) minus the exponent, so 1.50 has 2 and 2.5e-340 has 341.
	// Every float64 printed with 17 significant digits fits
	// (4.9406564584124654e-324 has 340). PostgreSQL's numeric holds 16,383,
	// printed in full like the integer digits.
	MaxNumberFracDigits = 340
	// MaxNumberExponent bounds a number's exponent either way. Beside the
	// two limits above it only matters for zero (0e99999 is 0 to PostgreSQL
	// up to an exponent of 1,073,741,822, then out of range).
	MaxNumberExponent = 1000

	// PostgreSQL's own limits on numeric, hence on jsonb numbers: beyond
	// them it fails with "value overflows numeric format" (22003).
	pgMaxIntDigits  = 131072
	pgMaxFracDigits = 16383
	pgMaxExponent   = 1<<30 - 2 // numeric_in refuses |exponent| >= INT_MAX/2

	// maxPropertyErrors caps the problems listed for one event's
	// properties; the rest are counted in one more error.
	maxPropertyErrors = 10
)

const msgNUL = "must not contain the NUL character (\\u0000): PostgreSQL cannot store it"

// checkProperties returns the values in properties p (valid JSON, an object)
// that the warehouse cannot store, each named by its path such as
// properties.a[3].b; nil, without allocating, when there are none. spaced
// reports white space between tokens (not inside strings), which is when p
// needs compacting.
func checkProperties(p []byte) (errs []FieldError, spaced bool) {
	s := limitScan{b: p}
	s.value(1)
	if s.found > maxPropertyErrors {
		s.errs = append(s.errs, FieldError{Field: "properties",
			Message: fmt.Sprintf("%d more values the warehouse cannot store", s.found-maxPropertyErrors)})
	}
	return s.errs, s.spaced
}

// limitScan walks a valid JSON value once. It keeps no path: the rare
// problem is named by walking to it again (pathTo).
type limitScan struct {
	b      []byte
	i      int
	found  int
	errs   []FieldError
	spaced bool // white space between tokens
}

// space returns the index of the first byte at or after i that is not
// white space, and notes whether there was any.
func (s *limitScan) space(i int) int {
	if i < len(s.b) && s.b[i] <= ' ' {
		j := jsonscan.SkipSpace(s.b, i)
		s.spaced = s.spaced || j > i
		return j
	}
	return i
}

// problem records msg about the value or member name at s.b[at].
func (s *limitScan) problem(at int, msg string) {
	if s.found++; s.found <= maxPropertyErrors {
		s.errs = append(s.errs, FieldError{Field: pathTo(s.b, at), Message: msg})
	}
}

// value scans the value at s.b[s.i], which lies depth containers deep
// (properties itself is 1).
func (s *limitScan) value(depth int) {
	b := s.b
	switch c := b[s.i]; c {
	case '{', '[':
		if depth > MaxPropertiesDepth {
			s.problem(s.i, fmt.Sprintf("nests objects and arrays deeper than the limit of %d levels (properties itself is level 1)", MaxPropertiesDepth))
			s.i = jsonscan.SkipValue(b, s.i)
			return
		}
		if c == '{' {
			s.object(depth)
		} else {
			s.array(depth)
		}
	case '"':
		end, msg := scanString(b, s.i)
		if msg != "" {
			s.problem(s.i, msg)
		}
		s.i = end
	case 't', 'n':
		s.i += 4
	case 'f':
		s.i += 5
	default:
		s.number()
	}
}

func (s *limitScan) object(depth int) {
	b := s.b
	if s.i = s.space(s.i + 1); b[s.i] == '}' {
		s.i++
		return
	}
	for {
		start := s.i
		end, msg := scanString(b, start)
		if msg != "" {
			s.problem(start, "the key "+msg)
		}
		s.i = s.space(s.space(end) + 1) // past the colon
		s.value(depth + 1)
		s.i = s.space(s.i)
		c := b[s.i]
		if s.i = s.space(s.i + 1); c == '}' {
			return
		}
	}
}

func (s *limitScan) array(depth int) {
	b := s.b
	if s.i = s.space(s.i + 1); b[s.i] == ']' {
		s.i++
		return
	}
	for {
		s.value(depth + 1)
		s.i = s.space(s.i)
		c := b[s.i]
		if s.i = s.space(s.i + 1); c == ']' {
			return
		}
	}
}

// number consumes a number. Short numbers without an exponent are within
// every limit and cost one pass over their bytes.
func (s *limitScan) number() {
	b, start, exp := s.b, s.i, false
	i := start
	for ; i < len(b); i++ {
		if c := b[i]; c == 'e' || c == 'E' {
			exp = true
		} else if !(c >= '0' && c <= '9' || c == '-' || c == '+' || c == '.') {
			break
		}
	}
	s.i = i
	if exp || i-start > MaxNumberIntDigits {
		if msg := numberProblem(b[start:i]); msg != "" {
			s.problem(start, msg)
		}
	}
}

// numberProblem says why a JSON number is out of range, or returns "".
func numberProblem(lit []byte) string {
	n := lit
	if n[0] == '-' {
		n = n[1:]
	}
	var frac, expDigits []byte
	if k := bytes.IndexAny(n, "eE"); k >= 0 {
		n, expDigits = n[:k], n[k+1:]
	}
	if k := bytes.IndexByte(n, '.'); k >= 0 {
		n, frac = n[:k], n[k+1:]
	}
	exp := parseExponent(expDigits)
	// pos is the place of the first non-zero digit: the number of digits
	// before the decimal point without the exponent (≤ 0 below 0.1).
	pos, zero := 0, true
	for k, c := range n {
		if c != '0' {
			pos, zero = len(n)-k, false
			break
		}
	}
	if zero {
		for k, c := range frac {
			if c != '0' {
				pos, zero = -k, false
				break
			}
		}
	}
	var intDigits int64
	if !zero {
		intDigits = max(0, int64(pos)+exp)
	}
	fracDigits := max(0, int64(len(frac))-exp)

	var pg bool // PostgreSQL itself refuses the number
	var what string
	switch {
	case exp > pgMaxExponent || exp < -pgMaxExponent:
		pg, what = true, fmt.Sprintf("exponent %s, the limit is ±%d", truncate(string(expDigits), 20), MaxNumberExponent)
	case intDigits > MaxNumberIntDigits:
		pg, what = intDigits > pgMaxIntDigits, fmt.Sprintf("%d digits before the decimal point, the limit is %d", intDigits, MaxNumberIntDigits)
	case fracDigits > MaxNumberFracDigits:
		pg, what = fracDigits > pgMaxFracDigits, fmt.Sprintf("%d digits after the decimal point, the limit is %d", fracDigits, MaxNumberFracDigits)
	case exp > MaxNumberExponent || exp < -MaxNumberExponent:
		what = fmt.Sprintf("exponent %d, the limit is ±%d", exp, MaxNumberExponent)
	default:
		return ""
	}
	if pg {
		return fmt.Sprintf("number %s is out of the range PostgreSQL can store: %s", truncate(string(lit), 40), what)
	}
	if intDigits > MaxNumberIntDigits || fracDigits > MaxNumberFracDigits {
		what += " (PostgreSQL would store it, but print every digit back)"
	}
	return fmt.Sprintf("number %s is out of range: %s", truncate(string(lit), 40), what)
}

// parseExponent parses an optionally signed exponent, saturating past
// pgMaxExponent (callers only compare it with that).
func parseExponent(d []byte) int64 {
	neg := false
	if len(d) > 0 && (d[0] == '-' || d[0] == '+') {
		neg, d = d[0] == '-', d[1:]
	}
	var e int64
	for _, c := range d {
		if e = e*10 + int64(c-'0'); e > pgMaxExponent {
			e = pgMaxExponent + 1
			break
		}
	}
	if neg {
		return -e
	}
	return e
}

// scanString returns the end of the JSON string that starts at b[i] (its
// opening quote), and what in it PostgreSQL refuses: \u0000, which neither
// text nor jsonb can hold, or a UTF-16 surrogate escape that is not a high
// one followed by a low one. b is valid JSON. Strings without a backslash,
// the common case, cost two byte searches.
func scanString(b []byte, i int) (end int, problem string) {
	start := i
	i++
	for {
		q := bytes.IndexByte(b[i:], '"')
		if q < 0 {
			return len(b), "" // not reached: b is valid JSON
		}
		k := bytes.IndexByte(b[i:i+q], '\\')
		if k < 0 {
			return i + q + 1, ""
		}
		i += k
		if b[i+1] != 'u' {
			i += 2 // may be \" or \\: search on after it
			continue
		}
		r := hex4(b[i+2 : i+6])
		switch {
		case r == 0:
			return jsonscan.SkipValue(b, start), msgNUL
		case r >= 0xD800 && r <= 0xDBFF:
			if i+12 <= len(b) && b[i+6] == '\\' && b[i+7] == 'u' {
				if lo := hex4(b[i+8 : i+12]); lo >= 0xDC00 && lo <= 0xDFFF {
					i += 12
					continue
				}
			}
			return jsonscan.SkipValue(b, start), surrogateProblem(r)
		case r >= 0xDC00 && r <= 0xDFFF:
			return jsonscan.SkipValue(b, start), surrogateProblem(r)
		}
		i += 6
	}
}

func surrogateProblem(r rune) string {
	return fmt.Sprintf("must not contain an unpaired UTF-16 surrogate escape (\\u%04x): PostgreSQL cannot store it", r)
}

// hex4 decodes the four hex digits of a \u escape; -1 if they are not.
func hex4(h []byte) rune {
	var r rune
	for _, c := range h {
		switch {
		case c >= '0' && c <= '9':
			r = r<<4 | rune(c-'0')
		case c >= 'a' && c <= 'f':
			r = r<<4 | rune(c-'a'+10)
		case c >= 'A' && c <= 'F':
			r = r<<4 | rune(c-'A'+10)
		default:
			return -1
		}
	}
	return r
}

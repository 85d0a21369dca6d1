package blueprint

import (
	"slices"
	"strings"
)

// accents folds the Portuguese accented letters people type (retenção,
// partições, avançado) to the blueprint's plain spelling.
var accents = strings.NewReplacer(
	"á", "a", "à", "a", "â", "a", "ã", "a", "é", "e", "ê", "e", "í", "i",
	"ó", "o", "ô", "o", "õ", "o", "ú", "u", "ç", "c",
)

// normalize lower-cases s, folds accents and spells separators as "_".
func normalize(s string) string {
	s = accents.Replace(strings.ToLower(strings.TrimSpace(s)))
	return strings.NewReplacer("-", "_", " ", "_").Replace(s)
}

// suggest returns the candidate that got is most likely a misspelling of, or
// "": an alias (the English word for a Portuguese key), the same word with
// accents, case or separators changed, or a candidate within a few edits.
func suggest(got string, candidates []string, alias map[string]string) string {
	n := normalize(got)
	if a, ok := alias[n]; ok && slices.Contains(candidates, a) {
		return a
	}
	best, bestD := "", 0
	for _, c := range candidates {
		if c == got {
			continue
		}
		d := editDistance(n, normalize(c))
		if d == 0 {
			return c
		}
		if limit := max(1, min(3, len(c)/3)); d <= limit && (best == "" || d < bestD) {
			best, bestD = c, d
		}
	}
	return best
}

// editDistance is the Damerau–Levenshtein (optimal string alignment) distance
// between a and b, in runes: a swap of two neighbours counts as one edit.
func editDistance(a, b string) int {
	ra, rb := []rune(a), []rune(b)
	d := make([][]int, len(ra)+1)
	for i := range d {
		d[i] = make([]int, len(rb)+1)
		d[i][0] = i
	}
	for j := range d[0] {
		d[0][j] = j
	}
	for i := 1; i <= len(ra); i++ {
		for j := 1; j <= len(rb); j++ {
			cost := 1
			if ra[i-1] == rb[j-1] {
				cost = 0
			}
			d[i][j] = min(d[i-1][j]+1, d[i][j-1]+1, d[i-1][j-1]+cost)
			if i > 1 && j > 1 && ra[i-1] == rb[j-2] && ra[i-2] == rb[j-1] {
				d[i][j] = min(d[i][j], d[i-2][j-2]+1)
			}
		}
	}
	return d[len(ra)][len(rb)]
}

package serverxml

import (
	"strings"
	"unicode/utf8"
)

// Suggest returns the candidate closest to name for a did-you-mean hint,
// or "" when none is close enough. Names are compared ignoring case, with
// the optimal string alignment distance (insertions, deletions,
// substitutions and swaps of adjacent letters); the distance allowed grows
// with the length of name: 1 up to 4 letters, 2 up to 9, 3 beyond.
func Suggest(name string, candidates []string) string {
	n := strings.ToLower(name)
	limit := 1 + len([]rune(n))/5
	if limit > 3 {
		limit = 3
	}
	best, bestD := "", limit+1
	nlen := utf8.RuneCountInString(n)
	for _, c := range candidates {
		if c == name {
			continue
		}
		// The distance is at least the difference in length: skip those
		// that cannot be close without computing it.
		if d := utf8.RuneCountInString(c) - nlen; d > limit || -d > limit {
			continue
		}
		if d := distance(n, strings.ToLower(c)); d < bestD {
			best, bestD = c, d
		}
	}
	return best
}

// distance is the optimal string alignment distance between a and b.
func distance(a, b string) int {
	x, y := []rune(a), []rune(b)
	if len(x) > 64 || len(y) > 64 {
		if a == b {
			return 0
		}
		return 1 << 20
	}
	// three rows: i-2, i-1, i
	prev2 := make([]int, len(y)+1)
	prev := make([]int, len(y)+1)
	cur := make([]int, len(y)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(x); i++ {
		cur[0] = i
		for j := 1; j <= len(y); j++ {
			cost := 1
			if x[i-1] == y[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
			if i > 1 && j > 1 && x[i-1] == y[j-2] && x[i-2] == y[j-1] {
				cur[j] = min(cur[j], prev2[j-2]+1)
			}
		}
		prev2, prev, cur = prev, cur, prev2
	}
	return prev[len(y)]
}

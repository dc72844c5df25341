package bench

import (
	"os"
	"strconv"
	"strings"
)

// RSS returns the resident set size in bytes of process pid (0: this
// process), from /proc; 0 if it cannot be read.
func RSS(pid int) int64 {
	file := "/proc/self/status"
	if pid != 0 {
		file = "/proc/" + strconv.Itoa(pid) + "/status"
	}
	b, err := os.ReadFile(file)
	if err != nil {
		return 0
	}
	for line := range strings.SplitSeq(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			kb, _ := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 10, 64)
			return kb << 10
		}
	}
	return 0
}

package main

import (
	"context"
	"errors"
	"io"
)

// runBenchHTTP is replaced by the host work (issue 4).
func runBenchHTTP(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	return errors.New("not built yet")
}

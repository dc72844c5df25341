package main

import (
	"context"
	"errors"
	"io"
)

// runNode is replaced by the host work (issue 4).
func runNode(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	return errors.New("not built yet")
}

package farm

import (
	"context"
	"errors"
	"fmt"
	"io"

	"github.com/wasmfarm/wasmfarm/host"
)

// Host is what the farm needs of the node's app host. Its methods must be
// safe for concurrent use. [ServerHost] adapts a *host.Server.
type Host interface {
	// DeployApp compiles module and serves it at path, replacing the app
	// there (requests in flight finish on the old version, sessions
	// stay). A refused module leaves the old version serving. name names
	// the module in logs and errors. module is not retained.
	DeployApp(ctx context.Context, path string, module []byte, name string) error
	// Undeploy stops serving path; an error wrapping [ErrAppNotFound]
	// means nothing was there.
	Undeploy(ctx context.Context, path string) error
	// Apps lists the apps served now.
	Apps() []App
}

// StreamHost is implemented by a [Host] that deploys a module read from a
// reader, without holding all of it in memory ([ServerHost] does); the
// farm then deploys from the received file. limit bounds what is read.
type StreamHost interface {
	DeployAppFrom(ctx context.Context, path string, module io.Reader, limit int64, name string) error
}

// App is an app a [Host] serves.
type App struct {
	Path   string // context path, "/" for the root
	Digest string // hex SHA-256 of its module
}

// ServerHost adapts a *host.Server to [Host].
func ServerHost(s *host.Server) Host { return serverHost{s} }

type serverHost struct{ s *host.Server }

func (h serverHost) DeployApp(ctx context.Context, path string, module []byte, name string) error {
	return h.s.DeployApp(ctx, path, module, host.AppConfig{Name: name})
}

func (h serverHost) DeployAppFrom(ctx context.Context, path string, module io.Reader, limit int64, name string) error {
	return h.s.DeployAppFrom(ctx, path, module, limit, host.AppConfig{Name: name})
}

func (h serverHost) Undeploy(ctx context.Context, path string) error {
	err := h.s.Undeploy(ctx, path)
	if errors.Is(err, host.ErrAppNotFound) {
		return fmt.Errorf("%w: %w", ErrAppNotFound, err)
	}
	return err
}

func (h serverHost) Apps() []App {
	cs := h.s.Engine().Contexts()
	apps := make([]App, 0, len(cs))
	for _, c := range cs {
		if d := c.Digest(); d != "" {
			apps = append(apps, App{Path: c.Path(), Digest: d})
		}
	}
	return apps
}

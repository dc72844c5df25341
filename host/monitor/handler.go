package monitor

import (
	"embed"
	"encoding/json"
	"fmt"
	"io/fs"
	"log/slog"
	"net/http"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// HandlerConfig configures [NewHandler].
type HandlerConfig struct {
	// Snapshot returns the node's state; it is called once per request
	// to /status or /metrics, possibly from several goroutines at once.
	// Required.
	Snapshot func() Snapshot
	// Logger logs failed scrapes and writes; nil discards.
	Logger *slog.Logger
}

//go:embed assets
var assetsFS embed.FS

// contentSecurityPolicy keeps the dashboard from loading or sending
// anything anywhere but its own origin.
const contentSecurityPolicy = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"

// NewHandler returns the monitoring endpoint:
//
//   - GET /status: the [Snapshot] as indented JSON;
//   - GET /metrics: Prometheus metrics, from a registry of this handler's
//     own holding one collector that reads a Snapshot per scrape;
//   - GET /: the dashboard page, and GET /assets/ its script and style.
//
// It panics if cfg.Snapshot is nil. The handler is safe for concurrent
// use.
func NewHandler(cfg HandlerConfig) http.Handler {
	if cfg.Snapshot == nil {
		panic("monitor: HandlerConfig.Snapshot is nil")
	}
	log := cfg.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	reg := prometheus.NewPedanticRegistry()
	reg.MustRegister(newCollector(cfg.Snapshot))
	assets, err := fs.Sub(assetsFS, "assets")
	if err != nil {
		panic(fmt.Sprintf("monitor: embedded assets: %v", err)) // cannot happen: the directory is embedded
	}
	index, err := fs.ReadFile(assets, "index.html")
	if err != nil {
		panic(fmt.Sprintf("monitor: embedded index.html: %v", err))
	}

	mux := http.NewServeMux()
	mux.HandleFunc("GET /status", func(w http.ResponseWriter, r *http.Request) {
		b, err := json.MarshalIndent(cfg.Snapshot(), "", "  ")
		if err != nil {
			log.Error("monitor: encoding status", "err", err)
			http.Error(w, "encoding status: "+err.Error(), http.StatusInternalServerError)
			return
		}
		h := w.Header()
		h.Set("Content-Type", "application/json")
		h.Set("Cache-Control", "no-store")
		h.Set("X-Content-Type-Options", "nosniff")
		w.Write(append(b, '\n'))
	})
	mux.Handle("GET /metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{
		ErrorLog:      slogPrinter{log},
		ErrorHandling: promhttp.ContinueOnError,
	}))
	files := http.FileServerFS(assets)
	mux.Handle("GET /assets/", http.StripPrefix("/assets", noStore(files)))
	mux.HandleFunc("GET /{$}", func(w http.ResponseWriter, r *http.Request) {
		h := w.Header()
		h.Set("Content-Type", "text/html; charset=utf-8")
		h.Set("Cache-Control", "no-store")
		h.Set("Content-Security-Policy", contentSecurityPolicy)
		h.Set("X-Content-Type-Options", "nosniff")
		w.Write(index)
	})
	return mux
}

// noStore keeps browsers from holding on to a dashboard of an older
// binary.
func noStore(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Cache-Control", "no-cache")
		w.Header().Set("X-Content-Type-Options", "nosniff")
		h.ServeHTTP(w, r)
	})
}

// slogPrinter adapts a slog.Logger to promhttp's Println logger.
type slogPrinter struct{ log *slog.Logger }

func (p slogPrinter) Println(v ...any) {
	p.log.Error("monitor: serving metrics", "err", fmt.Sprint(v...))
}

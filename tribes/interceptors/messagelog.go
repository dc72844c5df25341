package interceptors

import (
	"context"
	"log/slog"

	"github.com/wasmfarm/wasmfarm/tribes"
)

// LevelMessages is the log level of [MessageLog]'s records, below
// slog.LevelDebug: Tomcat's org.apache.catalina.tribes.MESSAGES logger
// (every message sent and received) as a level of its own, so that debug
// logging does not turn it on by accident.
const LevelMessages = slog.Level(-8)

// MessageLog logs every message passing through it, sent and received,
// at [LevelMessages]: direction, peer(s), options, size, unique id and the
// first bytes of the payload. It changes nothing; when the level is not
// enabled it costs one check per message.
type MessageLog struct {
	tribes.BaseInterceptor
	log *slog.Logger
}

var _ tribes.Interceptor = (*MessageLog)(nil)

// NewMessageLog returns the interceptor logging to log (nil: the
// channel's logger).
func NewMessageLog(log *slog.Logger) *MessageLog { return &MessageLog{log: log} }

func (l *MessageLog) logger() *slog.Logger {
	if l.log != nil {
		return l.log
	}
	return l.Channel().Logger()
}

// head returns the printable start of a payload, at most 32 bytes.
func head(b []byte) string {
	const n = 32
	if len(b) > n {
		b = b[:n]
	}
	out := make([]byte, len(b))
	for i, c := range b {
		if c < ' ' || c > '~' {
			c = '.'
		}
		out[i] = c
	}
	return string(out)
}

// SendMessage logs msg and passes it down.
func (l *MessageLog) SendMessage(ctx context.Context, to []*tribes.Member, msg *tribes.Message) error {
	log := l.logger()
	if !log.Enabled(ctx, LevelMessages) {
		return l.Next().SendMessage(ctx, to, msg)
	}
	err := l.Next().SendMessage(ctx, to, msg)
	first := "multicast" // a multicast message has no member list
	if len(to) > 0 {
		first = memberString(to[0])
	}
	log.Log(ctx, LevelMessages, "tribes message sent", "to", len(to), "first", first, "options", msg.Options,
		"bytes", len(msg.Data), "id", msg.UniqueID, "data", head(msg.Data), "err", err)
	return err
}

// MessageReceived logs msg and passes it up.
func (l *MessageLog) MessageReceived(msg *tribes.Message) error {
	log := l.logger()
	if log.Enabled(context.Background(), LevelMessages) {
		log.Log(context.Background(), LevelMessages, "tribes message received", "from", memberString(msg.Source), "options", msg.Options,
			"bytes", len(msg.Data), "id", msg.UniqueID, "data", head(msg.Data))
	}
	return l.Previous().MessageReceived(msg)
}

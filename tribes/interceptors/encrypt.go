package interceptors

import (
	"context"
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/wasmfarm/wasmfarm/bufpool"
	"github.com/wasmfarm/wasmfarm/tribes"
)

// Encrypt defaults (Tribes' EncryptInterceptor, 10.1.58 and later).
const (
	DefaultEncryptionAlgorithm      = "AES/GCM/NoPadding"
	DefaultReplayWindowTime         = 10 * time.Second
	DefaultReplayWindowMessageCount = 8192
)

// AES-GCM layout of an encrypted message field (spec §8).
const (
	gcmIVLen  = 12
	gcmTagLen = 16
	tsLen     = 8
	// EncryptOverhead is how many bytes Encrypt adds to a message: the IV,
	// the 8-byte timestamp and the GCM tag.
	EncryptOverhead = gcmIVLen + tsLen + gcmTagLen
)

// EncryptConfig configures an [Encrypt] interceptor. The zero value of every
// field but the key means its default.
type EncryptConfig struct {
	// EncryptionKey is the AES key as hexadecimal digits (encryptionKey):
	// 32, 48 or 64 digits for AES-128, -192 or -256. Exactly one of
	// EncryptionKey and KeyEnv must be set.
	EncryptionKey string
	// KeyEnv names an environment variable holding the key in the same
	// form (for example WASMFARM_CLUSTER_KEY), so that it stays out of
	// configuration files. It is read once, by NewEncrypt.
	KeyEnv string
	// EncryptionAlgorithm is the transformation (encryptionAlgorithm);
	// only the default, AES/GCM/NoPadding, is supported. Tribes also
	// accepts CBC, CFB and OFB with PKCS5Padding (with a warning: they
	// have no integrity); they are refused here with
	// [ErrUnsupportedAlgorithm].
	EncryptionAlgorithm string
	// ProviderName is accepted for configuration compatibility (Tribes'
	// JCA provider) and ignored.
	ProviderName string
	// ReplayWindowTime is how far a message's timestamp may be from the
	// local clock, and how long its IV is remembered (replayWindowTime,
	// default 10 s). Node clocks must agree well within it, and the time
	// a message waits in an asynchronous queue counts against it.
	ReplayWindowTime time.Duration
	// ReplayWindowMessageCount is how many IVs are remembered at most
	// (replayWindowMessageCount, default 8192). Evicting one makes
	// messages stamped before it unacceptable, so a node receiving more
	// than this many messages per ReplayWindowTime needs a larger value.
	ReplayWindowMessageCount int
	// Pool supplies the buffers; nil gives the interceptor a pool of its own.
	Pool *bufpool.Pool
	// Logger receives the logs; nil means the channel's logger.
	Logger *slog.Logger
}

// EncryptStats are an [Encrypt] interceptor's counters. Every failure is a
// dropped message.
type EncryptStats struct {
	Encrypted, Decrypted int64
	DecryptFailures      int64 // too short, or failed authentication (wrong key, corruption)
	Replays              int64 // IV already seen, or older than the last evicted entry
	Skewed               int64 // timestamp outside the replay window time
}

// Encrypt is Tribes' EncryptInterceptor in its 10.1.56+ format with
// AES-GCM (spec §8). It encrypts every message passing down through it
// and expects every message passing up to be encrypted; it ignores option
// flags.
//
// On the wire the message field becomes IV ‖ ciphertext ‖ tag: a fresh
// random 12-byte IV, then AES-GCM (128-bit tag, no additional data) of the
// message's timestamp as an 8-byte big-endian integer followed by the
// message bytes. The timestamp is msg.Timestamp, set to the current time
// when it is not positive. The options, the outer timestamp, the message
// id and the sender's member record stay in clear and unauthenticated.
//
// A received message is dropped (counted, logged at most every 10 s, and
// acknowledged normally, never with FAIL_ACK) when it does not decrypt
// (wrong key, corruption), when its inner timestamp is more than
// ReplayWindowTime away from the local clock, when its IV was seen within
// the window, or when it is not newer than the oldest message the window
// has forgotten. Tribes resends after a FAIL_ACK with the same ciphertext,
// so that duplicate is dropped as a replay.
//
// Place it below the interceptors that transform the bytes (Gzip above
// Encrypt on every node) and above the failure detector, whose probes
// travel unencrypted.
//
// The random IVs follow Java; with one key, keep well below 2^32 messages
// (NIST SP 800-38D) and rotate the key across a restart of every node.
type Encrypt struct {
	tribes.BaseInterceptor
	cfg  EncryptConfig
	aead cipher.AEAD
	pool *bufpool.Pool

	mu     sync.Mutex
	replay *replayWindow

	now   func() time.Time // time.Now; tests replace it
	rand  io.Reader        // nil: crypto/rand; tests replace it
	drops rateLimit

	enc, dec, fail, replays, skewed atomic.Int64
}

var (
	_ tribes.Interceptor = (*Encrypt)(nil)
	_ tribes.Starter     = (*Encrypt)(nil)
)

// NewEncrypt returns an encryption interceptor. It fails with an error
// wrapping [ErrBadKey] when the key is missing or invalid and with
// [ErrUnsupportedAlgorithm] for any algorithm but AES/GCM/NoPadding.
func NewEncrypt(cfg EncryptConfig) (*Encrypt, error) {
	alg := strings.TrimSpace(cfg.EncryptionAlgorithm)
	if alg == "" {
		alg = DefaultEncryptionAlgorithm
	}
	if !strings.EqualFold(alg, DefaultEncryptionAlgorithm) {
		return nil, fmt.Errorf("%w: %q; configure %s on every node (Tribes' CBC, CFB and OFB modes have no integrity and are not supported)",
			ErrUnsupportedAlgorithm, alg, DefaultEncryptionAlgorithm)
	}
	key, err := loadKey(cfg.EncryptionKey, cfg.KeyEnv)
	if err != nil {
		return nil, err
	}
	block, err := aes.NewCipher(key)
	clear(key)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrBadKey, err)
	}
	aead, err := cipher.NewGCM(block)
	if err != nil {
		return nil, fmt.Errorf("interceptors: encrypt: %w", err)
	}
	if cfg.ReplayWindowTime <= 0 {
		cfg.ReplayWindowTime = DefaultReplayWindowTime
	}
	if cfg.ReplayWindowMessageCount <= 0 {
		cfg.ReplayWindowMessageCount = DefaultReplayWindowMessageCount
	}
	cfg.EncryptionKey = "" // do not keep the key around in clear
	e := &Encrypt{cfg: cfg, aead: aead, pool: newPool(cfg.Pool), now: time.Now, drops: rateLimit{period: dropLogPeriod}}
	e.replay = newReplayWindow(cfg.ReplayWindowTime.Milliseconds(), cfg.ReplayWindowMessageCount, e.now().UnixMilli())
	return e, nil
}

// loadKey decodes the hexadecimal key given directly or through an
// environment variable.
func loadKey(hexKey, env string) ([]byte, error) {
	switch {
	case hexKey != "" && env != "":
		return nil, fmt.Errorf("%w: set EncryptionKey or KeyEnv, not both", ErrBadKey)
	case env != "":
		v, ok := os.LookupEnv(env)
		if !ok || strings.TrimSpace(v) == "" {
			return nil, fmt.Errorf("%w: environment variable %s is not set", ErrBadKey, env)
		}
		hexKey = v
	case hexKey == "":
		return nil, fmt.Errorf("%w: no key (set EncryptionKey or KeyEnv)", ErrBadKey)
	}
	key, err := hex.DecodeString(strings.TrimSpace(hexKey))
	if err != nil {
		return nil, fmt.Errorf("%w: not hexadecimal digits", ErrBadKey) // the error would quote the key
	}
	switch len(key) {
	case 16, 24, 32:
		return key, nil
	}
	return nil, fmt.Errorf("%w: %d bytes, want 16, 24 or 32 (AES-128, -192, -256)", ErrBadKey, len(key))
}

// Start resets the replay window: only messages stamped after the start
// minus the window time are accepted, as in Tribes.
func (e *Encrypt) Start(ctx context.Context) error {
	e.mu.Lock()
	e.replay.reset(e.now().UnixMilli())
	e.mu.Unlock()
	return nil
}

// Stop does nothing.
func (e *Encrypt) Stop(ctx context.Context) error { return nil }

// Stats returns the counters.
func (e *Encrypt) Stats() EncryptStats {
	return EncryptStats{Encrypted: e.enc.Load(), Decrypted: e.dec.Load(), DecryptFailures: e.fail.Load(),
		Replays: e.replays.Load(), Skewed: e.skewed.Load()}
}

// SendMessage encrypts msg.Data for the duration of the call below.
func (e *Encrypt) SendMessage(ctx context.Context, to []*tribes.Member, msg *tribes.Message) error {
	if msg.Timestamp <= 0 {
		msg.Timestamp = e.now().UnixMilli()
	}
	buf := e.pool.Get(len(msg.Data) + EncryptOverhead)
	if err := e.seal(buf.B, msg.Timestamp, msg.Data); err != nil {
		e.pool.Put(buf)
		return err
	}
	e.enc.Add(1)
	data := msg.Data
	msg.Data = buf.B
	err := e.Next().SendMessage(ctx, to, msg)
	msg.Data = data
	e.pool.Put(buf)
	return err
}

// seal writes IV ‖ AES-GCM(ts ‖ msg) into out, which is exactly
// len(msg)+EncryptOverhead bytes long.
func (e *Encrypt) seal(out []byte, ts int64, msg []byte) error {
	iv := out[:gcmIVLen]
	if e.rand != nil {
		if _, err := io.ReadFull(e.rand, iv); err != nil {
			return fmt.Errorf("interceptors: encrypt: IV: %w", err)
		}
	} else {
		rand.Read(iv) // never fails (crypto/rand crashes the program instead)
	}
	pt := out[gcmIVLen : gcmIVLen+tsLen+len(msg)]
	binary.BigEndian.PutUint64(pt, uint64(ts))
	copy(pt[tsLen:], msg)
	e.aead.Seal(pt[:0], iv, pt, nil) // in place; the tag fills the rest of out
	return nil
}

// MessageReceived decrypts msg.Data for the duration of the call above, or
// drops the message.
func (e *Encrypt) MessageReceived(msg *tribes.Message) error {
	if isProbe(msg.Data) {
		return nil // an unencrypted failure-detector probe: never for us
	}
	if len(msg.Data) < EncryptOverhead {
		e.fail.Add(1)
		e.dropped(msg, fmt.Errorf("%w: %d bytes, shorter than IV, timestamp and tag", ErrDecrypt, len(msg.Data)))
		return nil
	}
	buf := e.pool.Get(len(msg.Data) - gcmIVLen - gcmTagLen)
	body, err := e.open(buf.B[:0], msg.Data)
	if err != nil {
		e.pool.Put(buf)
		e.count(err)
		e.dropped(msg, err)
		return nil
	}
	e.dec.Add(1)
	data := msg.Data
	msg.Data = body
	err = e.Previous().MessageReceived(msg)
	msg.Data = data
	e.pool.Put(buf)
	return err
}

// open decrypts data (IV ‖ ciphertext ‖ tag) into dst, checks its
// timestamp against the replay window, and returns the message bytes
// (without the timestamp), a sub-slice of dst's array. The result is at
// most len(data) - EncryptOverhead bytes; nothing else is allocated.
func (e *Encrypt) open(dst, data []byte) ([]byte, error) {
	if len(data) < EncryptOverhead {
		return nil, fmt.Errorf("%w: %d bytes, shorter than IV, timestamp and tag", ErrDecrypt, len(data))
	}
	iv := (*[gcmIVLen]byte)(data[:gcmIVLen])
	pt, err := e.aead.Open(dst, iv[:], data[gcmIVLen:], nil)
	if err != nil {
		return nil, ErrDecrypt
	}
	ts := int64(binary.BigEndian.Uint64(pt))
	now := e.now().UnixMilli()
	e.mu.Lock()
	err = e.replay.check(iv, ts, now)
	e.mu.Unlock()
	if err != nil {
		return nil, err
	}
	return pt[tsLen:], nil
}

func (e *Encrypt) count(err error) {
	switch {
	case errors.Is(err, ErrReplay):
		e.replays.Add(1)
	case errors.Is(err, ErrClockSkew):
		e.skewed.Add(1)
	default:
		e.fail.Add(1)
	}
}

func (e *Encrypt) dropped(msg *tribes.Message, err error) {
	e.drops.warn(logger(e.cfg.Logger, &e.BaseInterceptor), "tribes encrypt: dropping a received message",
		"source", memberString(msg.Source), "id", msg.UniqueID.String(), "err", err)
}

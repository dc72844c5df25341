// Package h1 reads HTTP/1.1 requests into reused [net/http.Request]s and
// writes response heads: the wire side of the host's own connector.
//
// It reads what net/http's server accepts and refuses what could be read
// two ways (request smuggling): a body with both Content-Length and
// Transfer-Encoding, a transfer coding other than chunked, differing
// Content-Lengths, header names with spaces, folded lines, control bytes in
// a field. Each refusal is an [*Error] carrying the status to answer
// (400, 431, 501 or 505); the connection must then be closed.
//
// A [Reader] belongs to one connection. It keeps the strings of the
// previous request's lines and reuses them when a line repeats byte for
// byte, as a keep-alive client's do, so a repeated request allocates
// nothing.
package h1

// Package interop holds wasmfarm's harnesses for wire interop with real
// Apache Tribes nodes.
//
// The Java side is java/TribesPeer.java, a small program of our own built
// against the installed catalina-tribes.jar: a GroupChannel whose receiver,
// membership and interceptor stack are chosen by command-line flags, driven
// by commands on stdin and reporting events as JSON lines on stdout. Its
// header comment is the reference for the flags, commands and events.
//
// The Go side is package [github.com/wasmfarm/wasmfarm/interop/javapeer],
// which compiles the program, starts it and turns its events into Go values;
// tests in other packages (tribes' interop_test.go) drive it.
//
// Prerequisites (Debian): a JDK (default-jdk-headless) and libtomcat10-java,
// which installs /usr/share/java/tomcat10-tribes.jar and
// /usr/share/java/tomcat10-juli.jar.
package interop

import _ "embed"

//go:embed java/TribesPeer.java
var tribesPeerJava string

// TribesPeerJava returns the source of the Java harness, TribesPeer.java.
func TribesPeerJava() string { return tribesPeerJava }
